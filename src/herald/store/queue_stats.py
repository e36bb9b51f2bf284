"""What the delivery queue holds right now: due rows per channel and priority, and the oldest due time.

Read at scrape time by the metrics endpoints; one grouped statement over the live rows, which the
partial index ``ix_deliveries_due`` (status pending/sending) narrows down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.tables import deliveries


@dataclass(frozen=True)
class DueCount:
    channel: str
    priority: int  # the stored rank: 0 high, 1 normal, 2 low
    count: int
    oldest_due_at: datetime


async def due_delivery_counts(conn: AsyncConnection, now: datetime) -> list[DueCount]:
    """Pending deliveries whose ``next_attempt_at`` has come, grouped by channel and priority.

    Rows leased by a worker (``sending``) are in flight, not waiting, so they are left out.
    """
    due_at = func.min(deliveries.c.next_attempt_at).label("oldest_due_at")
    rows = await conn.execute(
        select(deliveries.c.channel, deliveries.c.priority, func.count().label("n"), due_at)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        .group_by(deliveries.c.channel, deliveries.c.priority)
    )
    return [DueCount(r.channel, int(r.priority), int(r.n), r.oldest_due_at) for r in rows]
