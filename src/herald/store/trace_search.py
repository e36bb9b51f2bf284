"""Finding notifications and deliveries for the console's trace search, by indexed paths only.

Each query walks one index, newest first, and stops: a user's deliveries by ``ix_deliveries_user_id``;
ended deliveries (any status but pending/sending) by ``ix_deliveries_ended`` (``updated_at``) inside a
time window; the queue (pending/sending) by ``ix_deliveries_due``; notifications by
``ix_notifications_created_at`` inside a time window. A filter the index does not hold (a type, a
status, a reason) is applied to at most ``EXAMINED_CAP`` rows of the walk, never to a whole table:
the page says so, and a narrower window finds what lies further.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.tables import deliveries, notifications

EXAMINED_CAP = 10_000
"""At most this many index entries are read for one page of a filtered search."""

LIVE_STATUSES = ("pending", "sending")
# written as literals so that both planners match the partial indexes' predicates (tables.py)
_ENDED = text("deliveries.status NOT IN ('pending', 'sending')")
_LIVE = text("deliveries.status IN ('pending', 'sending')")

DELIVERY_COLUMNS = (
    deliveries.c.id,
    deliveries.c.notification_id,
    deliveries.c.user_id,
    deliveries.c.channel,
    deliveries.c.account,
    deliveries.c.status,
    deliveries.c.reason,
    deliveries.c.reason_detail,
    deliveries.c.attempts,
    deliveries.c.last_error,
    deliveries.c.next_attempt_at,
    deliveries.c.created_at,
    deliveries.c.updated_at,
)


@dataclass(frozen=True)
class Found:
    rows: list[dict[str, Any]]
    next_before: tuple[datetime, str] | None
    """The sort key to continue after (the next page), or None at the end."""
    capped: bool
    """The walk stopped at ``EXAMINED_CAP`` entries: older matches may lie beyond this page."""


async def _filtered(conn: AsyncConnection, walk: Select[Any], filters: list[Any], limit: int, key: str) -> Found:
    """``walk`` (an index walk, newest first) cut at ``EXAMINED_CAP`` entries, then ``filters``."""
    inner = walk.limit(EXAMINED_CAP).subquery()
    query = select(inner)
    for make in filters:
        query = query.where(make(inner.c))
    query = query.order_by(inner.c[key].desc(), inner.c.id.desc()).limit(limit + 1)
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    if len(rows) > limit:
        last = rows[limit - 1]
        return Found(rows[:limit], (last[key], last["id"]), False)
    if not filters:  # the walk itself ended
        return Found(rows, None, False)
    walked = (await conn.execute(select(func.count()).select_from(inner))).scalar_one()
    if walked < EXAMINED_CAP:
        return Found(rows, None, False)
    # the walk was cut short: the next page goes on from the oldest entry it read
    oldest = (
        await conn.execute(select(inner.c[key], inner.c.id).order_by(inner.c[key].asc(), inner.c.id.asc()).limit(1))
    ).one()
    return Found(rows, (oldest[0], oldest[1]), True)


def _delivery_filters(status: str | None, reason: str | None, channel: str | None) -> list[Any]:
    filters: list[Any] = []
    if status:
        filters.append(lambda c: c.status == status)
    if reason:
        filters.append(lambda c: c.reason == reason)
    if channel:
        filters.append(lambda c: c.channel == channel)
    return filters


async def deliveries_of_user(
    conn: AsyncConnection,
    user_id: str,
    *,
    status: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Found:
    """A user's deliveries, newest first (their index), optionally of one status or reason."""
    walk = select(*DELIVERY_COLUMNS).where(deliveries.c.user_id == user_id)
    if since is not None:
        walk = walk.where(deliveries.c.created_at >= since)
    if until is not None:
        walk = walk.where(deliveries.c.created_at < until)
    if before is not None:
        walk = walk.where(tuple_(deliveries.c.created_at, deliveries.c.id) < tuple_(*before))
    walk = walk.order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
    return await _filtered(conn, walk, _delivery_filters(status, reason, None), limit, "created_at")


async def ended_deliveries(
    conn: AsyncConnection,
    *,
    since: datetime,
    until: datetime,
    status: str | None = None,
    reason: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Found:
    """Deliveries that ended (sent, delivered, failed, skipped, …) in ``[since, until)``, by when."""
    walk = select(*DELIVERY_COLUMNS).where(_ENDED, deliveries.c.updated_at >= since, deliveries.c.updated_at < until)
    if before is not None:
        walk = walk.where(tuple_(deliveries.c.updated_at, deliveries.c.id) < tuple_(*before))
    walk = walk.order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
    return await _filtered(conn, walk, _delivery_filters(status, reason, None), limit, "updated_at")


async def queued_deliveries(
    conn: AsyncConnection, *, status: str | None = None, reason: str | None = None, limit: int = 50
) -> Found:
    """The first deliveries of the queue (pending or sending), in the order the worker takes them."""
    walk = select(*DELIVERY_COLUMNS).where(_LIVE).order_by(deliveries.c.priority, deliveries.c.next_attempt_at)
    inner = walk.limit(EXAMINED_CAP).subquery()
    query = select(inner)
    for make in _delivery_filters(status, reason, None):
        query = query.where(make(inner.c))
    rows = [dict(r) for r in (await conn.execute(query.limit(limit))).mappings()]
    return Found(rows, None, False)


async def notifications_in(
    conn: AsyncConnection,
    *,
    since: datetime,
    until: datetime,
    type_key: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Found:
    """Notifications created in ``[since, until)``, newest first, optionally of one type."""
    walk = select(
        notifications.c.id,
        notifications.c.type_key,
        notifications.c.category,
        notifications.c.status,
        notifications.c.recipients,
        notifications.c.channels,
        notifications.c.created_at,
    ).where(notifications.c.created_at >= since, notifications.c.created_at < until)
    if before is not None:
        walk = walk.where(tuple_(notifications.c.created_at, notifications.c.id) < tuple_(*before))
    walk = walk.order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
    filters = [lambda c: c.type_key == type_key] if type_key else []
    return await _filtered(conn, walk, filters, limit, "created_at")


async def delivery_by_id(conn: AsyncConnection, delivery_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(*DELIVERY_COLUMNS).where(deliveries.c.id == delivery_id))).mappings().first()
    return dict(row) if row else None
