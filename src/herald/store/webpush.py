"""Browsers' Web Push subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.tables import webpush_subscriptions


async def save_subscription(
    conn: AsyncConnection, user_id: str, endpoint: str, p256dh: str, auth: str, now: datetime
) -> None:
    """One endpoint is one browser: subscribing it again (maybe as another user) replaces it."""
    values = {"user_id": user_id, "p256dh": p256dh, "auth": auth, "created_at": now}
    stmt = upsert(conn, webpush_subscriptions).values(endpoint=endpoint, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[webpush_subscriptions.c.endpoint], set_=values))


async def delete_subscription(conn: AsyncConnection, user_id: str, endpoint: str) -> bool:
    result = await conn.execute(
        delete(webpush_subscriptions).where(
            webpush_subscriptions.c.endpoint == endpoint, webpush_subscriptions.c.user_id == user_id
        )
    )
    return result.rowcount > 0


async def forget_endpoints(conn: AsyncConnection, endpoints: Sequence[str]) -> None:
    if endpoints:
        await conn.execute(delete(webpush_subscriptions).where(webpush_subscriptions.c.endpoint.in_(list(endpoints))))


async def subscriptions_of(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """``{user_id: [PushSubscription JSON, ...]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not user_ids:
        return out
    rows = await conn.execute(select(webpush_subscriptions).where(webpush_subscriptions.c.user_id.in_(list(user_ids))))
    for r in rows.mappings():
        out.setdefault(r["user_id"], []).append(
            {"endpoint": r["endpoint"], "keys": {"p256dh": r["p256dh"], "auth": r["auth"]}}
        )
    return out
