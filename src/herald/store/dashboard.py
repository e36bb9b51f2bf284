"""What the console's dashboard shows: the deliveries of a recent window, the queue, the last failures.

Every statement walks an index range, never the whole table: deliveries that ended by
``ix_deliveries_ended`` (``updated_at``, partial: ``status NOT IN ('pending', 'sending')``), live ones
by ``ix_deliveries_due`` (partial: ``status IN ('pending', 'sending')``), in-app items by
``ix_inbox_items_created_at``. The WHERE clauses repeat the indexes' own predicates as literal text,
which is what lets a planner see that the partial index applies. The cost still grows with the
window's volume (a grouped count over the day's ended deliveries), which is why the console caches
the result for a short while (web/console/dashboard.py).

The ended deliveries are counted per UTC hour in the same statement (the dashboard's chart): the
hour is the text ``YYYY-MM-DD HH`` of ``updated_at`` in UTC, spelled per database (SQLite stores
naive UTC text, PostgreSQL a ``timestamptz`` that ``to_char`` would render in the session's zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.tables import deliveries, inbox_items

ENDED = text("status NOT IN ('pending', 'sending')")
LIVE = text("status IN ('pending', 'sending')")


@dataclass(frozen=True)
class DeliveryTally:
    status: str
    channel: str
    reason: str | None
    count: int
    hour: datetime  # the UTC hour the deliveries ended in (aware, minutes zero)


@dataclass(frozen=True)
class FailedDelivery:
    id: str
    notification_id: str
    user_id: str
    channel: str
    reason: str | None
    last_error: str | None
    updated_at: datetime


HOUR_FORMAT = "%Y-%m-%d %H"


def _ended_hour(dialect: str) -> ColumnElement[str]:
    """``updated_at``'s UTC hour as ``YYYY-MM-DD HH`` text, the same on both databases."""
    if dialect == "postgresql":
        # literal text, not bound parameters: GROUP BY must repeat the SELECT's expression exactly
        utc: ColumnElement[str] = literal_column("'UTC'")
        pattern: ColumnElement[str] = literal_column("'YYYY-MM-DD HH24'")
        return func.to_char(func.timezone(utc, deliveries.c.updated_at), pattern)
    return func.substr(deliveries.c.updated_at, 1, 13)  # SQLite: 'YYYY-MM-DD HH:MM:SS...' naive UTC


async def ended_deliveries(conn: AsyncConnection, since: datetime) -> list[DeliveryTally]:
    """Deliveries that ended at or after ``since``, counted by status, channel, reason and UTC hour."""
    n = func.count().label("n")
    hour = _ended_hour(conn.dialect.name).label("hour")
    query = (
        select(deliveries.c.status, deliveries.c.channel, deliveries.c.reason, hour, n)
        .where(ENDED, deliveries.c.updated_at >= since)
        .group_by(deliveries.c.status, deliveries.c.channel, deliveries.c.reason, hour)
    )
    return [
        DeliveryTally(
            r.status, r.channel, r.reason, int(r.n), datetime.strptime(r.hour, HOUR_FORMAT).replace(tzinfo=UTC)
        )
        for r in await conn.execute(query)
    ]


async def live_deliveries(conn: AsyncConnection) -> dict[str, int]:
    """How many deliveries are pending (due or not) and sending, whatever their age."""
    query = select(deliveries.c.status, func.count().label("n")).where(LIVE).group_by(deliveries.c.status)
    return {r.status: int(r.n) for r in await conn.execute(query)}


async def inbox_items_written(conn: AsyncConnection, since: datetime) -> int:
    """In-app items created at or after ``since`` (an in-app delivery is the item itself)."""
    query = select(func.count()).select_from(inbox_items).where(inbox_items.c.created_at >= since)
    return int((await conn.execute(query)).scalar_one())


async def last_failures(conn: AsyncConnection, since: datetime, limit: int) -> list[FailedDelivery]:
    """The newest failed deliveries that ended at or after ``since`` (a backward walk of the ended
    index over the window: it stops at the ``limit``-th failure, or at the window's start)."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.notification_id,
            deliveries.c.user_id,
            deliveries.c.channel,
            deliveries.c.reason,
            deliveries.c.last_error,
            deliveries.c.updated_at,
        )
        .where(ENDED, deliveries.c.updated_at >= since, deliveries.c.status == "failed")
        .order_by(deliveries.c.updated_at.desc())
        .limit(limit)
    )
    return [
        FailedDelivery(r.id, r.notification_id, r.user_id, r.channel, r.reason, r.last_error, r.updated_at)
        for r in await conn.execute(query)
    ]
