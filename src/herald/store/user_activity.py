"""One user's recent deliveries, newest first (the console's user page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.tables import deliveries


async def recent_deliveries(conn: AsyncConnection, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The user's ``limit`` newest deliveries. Found through ``ix_deliveries_user_id``: the sort reads
    every delivery of this one user (what retention keeps of them), never another user's."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.notification_id,
            deliveries.c.channel,
            deliveries.c.account,
            deliveries.c.status,
            deliveries.c.reason,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.created_at,
            deliveries.c.updated_at,
        )
        .where(deliveries.c.user_id == user_id)
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]
