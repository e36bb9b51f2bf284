"""Addresses users register with a channel from their devices (Web Push subscriptions, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.records import Endpoint
from herald.store.dialect import upsert
from herald.store.tables import user_endpoints


async def save_endpoint(
    conn: AsyncConnection, channel: str, user_id: str, address: str, data: dict[str, Any], now: datetime
) -> bool:
    """Register ``address`` for ``user_id``; False (nothing changed) when another user holds it.

    One address is one device. It moves to another user only when registered with the same
    ``data`` (the device's own keys: whoever signs in on that browser next), never just because
    someone knows the address."""
    held = (
        await conn.execute(
            select(user_endpoints.c.user_id, user_endpoints.c.data).where(
                user_endpoints.c.channel == channel, user_endpoints.c.address == address
            )
        )
    ).first()
    values = {"user_id": user_id, "data": data, "created_at": now}
    if held is not None and held.user_id != user_id:
        if dict(held.data or {}) != data:
            return False
        moved = await conn.execute(
            update(user_endpoints)
            .where(
                user_endpoints.c.channel == channel,
                user_endpoints.c.address == address,
                user_endpoints.c.user_id == held.user_id,
            )
            .values(**values)
        )
        return moved.rowcount > 0
    stmt = upsert(conn, user_endpoints).values(channel=channel, address=address, **values)
    saved = await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[user_endpoints.c.channel, user_endpoints.c.address],
            set_=values,
            # registered by another user since the look-up above: theirs stays
            where=user_endpoints.c.user_id == user_id,
        )
    )
    return saved.rowcount > 0


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
