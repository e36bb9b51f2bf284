"""Addresses users register with a channel from their devices (Web Push subscriptions, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.records import Endpoint
from herald.store.dialect import upsert
from herald.store.tables import user_endpoints


async def save_endpoint(
    conn: AsyncConnection, channel: str, user_id: str, address: str, data: dict[str, Any], now: datetime
) -> None:
    """One address is one device: registering it again (maybe as another user) replaces it."""
    values = {"user_id": user_id, "data": data, "created_at": now}
    stmt = upsert(conn, user_endpoints).values(channel=channel, address=address, **values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[user_endpoints.c.channel, user_endpoints.c.address], set_=values)
    )


async def delete_endpoint(conn: AsyncConnection, channel: str, user_id: str, address: str) -> bool:
    result = await conn.execute(
        delete(user_endpoints).where(
            user_endpoints.c.channel == channel,
            user_endpoints.c.address == address,
            user_endpoints.c.user_id == user_id,
        )
    )
    return result.rowcount > 0


async def forget_addresses(conn: AsyncConnection, channel: str, addresses: Sequence[str]) -> None:
    """The provider says these addresses no longer exist."""
    if addresses:
        await conn.execute(
            delete(user_endpoints).where(
                user_endpoints.c.channel == channel, user_endpoints.c.address.in_(list(addresses))
            )
        )


async def endpoints_of(conn: AsyncConnection, channel: str, user_ids: Sequence[str]) -> dict[str, list[Endpoint]]:
    out: dict[str, list[Endpoint]] = {}
    if not user_ids:
        return out
    rows = await conn.execute(
        select(user_endpoints)
        .where(user_endpoints.c.channel == channel, user_endpoints.c.user_id.in_(list(user_ids)))
        .order_by(user_endpoints.c.created_at)
    )
    for r in rows.mappings():
        out.setdefault(r["user_id"], []).append(Endpoint(address=r["address"], data=dict(r["data"] or {})))
    return out
