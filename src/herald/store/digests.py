"""Digests: the open windows of collected events, and their flush (see tables.py and engine/digests.py).

The two races this module settles, on both databases:

- two workers collecting events for the same user × type × channel at once: the open digest is
  unique (a partial unique index), opening one is an INSERT … ON CONFLICT DO NOTHING, and an event
  joins with an UPDATE … WHERE status = 'open' (a row lock on PostgreSQL, the single writer on
  SQLite), so both land in the same digest and its count is exact;
- two flushes of the same digest (the window's end and max_items, or a job retried after a lost
  lease): each step moves the status on with a WHERE on the old one, so only one writes the message.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.ids import new_id
from herald.store import jobs as job_store
from herald.store.dialect import upsert
from herald.store.tables import deliveries, digest_events, digests, notifications

OPEN, CLOSING, FLUSHED = "open", "closing", "flushed"
IS_OPEN = digests.c.status == literal_column("'open'")
"""Written as a literal, not a parameter: so both planners see that the open digest's partial
unique index (``WHERE status = 'open'``) answers the query."""
JOB_KIND = "digest"
OPEN_TRIES = 5
"""Collecting retries this often when the digest it found closes under it (a flush between two
statements): each retry opens or finds the next window."""


@dataclass(frozen=True)
class Digest:
    id: str
    user_id: str
    type_key: str
    channel: str
    status: str
    notification_id: str
    count: int
    max_items: int
    opened_at: datetime
    flush_at: datetime
    flushed_at: datetime | None = None
    delivery_id: str | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Digest:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Collected:
    """Where an event went: its digest, and whether it filled it (then it is flushed now)."""

    digest: Digest
    full: bool


@dataclass(frozen=True)
class NewEvent:
    """A delivery to collect instead of sending it."""

    delivery_id: str
    notification_id: str
    user_id: str
    type_key: str
    channel: str
    category: str
    priority: str
    rank: int
    accounts: dict[str, list[str]] | None
    occurred_at: datetime
    """When the event happened (its notification's creation): digests list events in this order."""


async def collect_event(
    conn: AsyncConnection,
    event: NewEvent,
    *,
    window_seconds: int,
    max_items: int,
    now: datetime,
    maybe_collected: bool = True,
) -> Collected:
    """Add ``event`` to the user's open digest for its type and channel, opening one (with its own
    notification and its flush job due at the window's end) if there is none.

    Idempotent per delivery: an event collected before (a delivery handled again after a crash) is
    not added twice. ``maybe_collected`` False skips that lookup, for a delivery on its first claim
    (which no earlier handling can have collected). Two statements when a window is open, three
    more to open one."""
    if maybe_collected and (before := await _digest_of_event(conn, event.delivery_id)) is not None:
        return Collected(before, full=False)
    for _ in range(OPEN_TRIES):
        digest = await _join_open(conn, event, now)
        if digest is None:  # no open window: open one (or find that another worker just did)
            digest = await _start_digest(conn, event, window_seconds, max_items, now)
        if digest is None:
            continue  # it closed, or another worker opened one, between two statements: again
        await conn.execute(
            insert(digest_events).values(
                delivery_id=event.delivery_id,
                digest_id=digest.id,
                position=digest.count,
                notification_id=event.notification_id,
                created_at=event.occurred_at,
            )
        )
        full = digest.status == CLOSING
        if full:  # max_items reached: flushed now (the window's own job will find it done)
            await job_store.enqueue_job(
                conn, JOB_KIND, {"digest_id": digest.id}, run_at=now, now=now, priority=event.rank
            )
        return Collected(digest, full=full)
    raise RuntimeError(f"could not collect delivery {event.delivery_id} into a digest after {OPEN_TRIES} tries")


def _counted(now: datetime) -> dict[str, Any]:
    """One more event, and closing once the digest holds max_items."""
    return {
        "count": digests.c.count + 1,
        "status": case((digests.c.count + 1 >= digests.c.max_items, CLOSING), else_=OPEN),
        "updated_at": now,
    }


async def _join_open(conn: AsyncConnection, event: NewEvent, now: datetime) -> Digest | None:
    """Count the event in the user's open digest for its type and channel (one statement, found by
    the open digest's unique index): the digest as it is now, or None when none is open."""
    result = await conn.execute(
        update(digests)
        .where(
            digests.c.user_id == event.user_id,
            digests.c.type_key == event.type_key,
            digests.c.channel == event.channel,
            IS_OPEN,
        )
        .values(**_counted(now))
        .returning(*digests.c)
    )
    row = result.mappings().first()
    return Digest.from_row(row) if row else None


async def _digest_of_event(conn: AsyncConnection, delivery_id: str) -> Digest | None:
    row = (
        (
            await conn.execute(
                select(digests)
                .join(digest_events, digest_events.c.digest_id == digests.c.id)
                .where(digest_events.c.delivery_id == delivery_id)
            )
        )
        .mappings()
        .first()
    )
    return Digest.from_row(row) if row else None


async def _start_digest(
    conn: AsyncConnection, event: NewEvent, window_seconds: int, max_items: int, now: datetime
) -> Digest | None:
    """Open a digest holding this first event (the window starts with it), or None if another
    worker just opened one. The row is this transaction's until it commits: no other event joins it
    meanwhile, so it is written with its count (and closed at once when ``max_items`` is 1)."""
    digest = Digest(
        id=new_id("dgs"),
        user_id=event.user_id,
        type_key=event.type_key,
        channel=event.channel,
        status=CLOSING if max_items <= 1 else OPEN,
        notification_id=new_id("ntf"),
        count=1,
        max_items=max_items,
        opened_at=now,
        flush_at=now + timedelta(seconds=window_seconds),
    )
    values = {f.name: getattr(digest, f.name) for f in fields(Digest)} | {"updated_at": now}
    stmt = (
        upsert(conn, digests)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "type_key", "channel"], index_where=text("status = 'open'"))
    )
    if (await conn.execute(stmt)).rowcount != 1:
        return None
    accounts = (event.accounts or {}).get(event.channel)
    await conn.execute(
        insert(notifications).values(
            id=digest.notification_id,
            type_key=event.type_key,
            category=event.category,
            priority=event.priority,
            status="collecting",
            channels=[event.channel],
            data={},
            actor=None,
            target=None,
            rendered={},
            audience=None,
            accounts={event.channel: accounts} if accounts else None,
            recipients=1,
            send_at=None,
            expires_at=None,
            created_at=now,
            updated_at=now,
            digest_id=digest.id,
        )
    )
    await job_store.enqueue_job(
        conn, JOB_KIND, {"digest_id": digest.id}, run_at=digest.flush_at, now=now, priority=event.rank
    )
    return digest


async def close_digest(conn: AsyncConnection, digest_id: str, now: datetime) -> Digest | None:
    """The flush's claim: an open digest stops taking events (closing); returns the digest as it is
    now (closing, or already flushed by another), None if there is no such digest."""
    await conn.execute(
        update(digests)
        .where(digests.c.id == digest_id, digests.c.status == OPEN)
        .values(status=CLOSING, updated_at=now)
    )
    return await get_digest(conn, digest_id)


async def get_digest(conn: AsyncConnection, digest_id: str) -> Digest | None:
    row = (await conn.execute(select(digests).where(digests.c.id == digest_id))).mappings().first()
    return Digest.from_row(row) if row else None


@dataclass(frozen=True)
class Event:
    delivery_id: str
    notification_id: str
    position: int
    created_at: datetime


async def events_of(conn: AsyncConnection, digest_id: str) -> list[Event]:
    """A digest's events in the order they happened (not the order workers collected them in)."""
    rows = await conn.execute(
        select(digest_events)
        .where(digest_events.c.digest_id == digest_id)
        .order_by(digest_events.c.created_at, digest_events.c.notification_id)
    )
    return [Event(r.delivery_id, r.notification_id, r.position, r.created_at) for r in rows]


async def mark_flushed(
    conn: AsyncConnection,
    digest: Digest,
    *,
    delivery_id: str | None,
    status: str,
    rendered: dict[str, Any],
    data: dict[str, Any],
    error: str | None,
    now: datetime,
) -> bool:
    """The one step that decides which flush writes the message: closing → flushed, once; with
    it, the digest's notification gets its final status and content. False, writing nothing, when
    another flush did it (the caller then writes no delivery either)."""
    result = await conn.execute(
        update(digests)
        .where(digests.c.id == digest.id, digests.c.status == CLOSING)
        .values(status=FLUSHED, flushed_at=now, delivery_id=delivery_id, last_error=error, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == digest.notification_id)
        .values(status=status, rendered=rendered, data=data, updated_at=now)
    )
    return True


async def withdraw_events(conn: AsyncConnection, notification_id: str, now: datetime) -> int:
    """A cancelled notification's events leave the digests still open (a closed one is being sent:
    it keeps them), and their deliveries end ``cancelled``; how many. The digests' rows are locked
    first, so a flush closing one at the same moment either ran before (and keeps the event) or
    runs after (and never sees it)."""
    mine = select(digest_events.c.digest_id).where(digest_events.c.notification_id == notification_id)
    locked = await conn.execute(  # in id order: two cancels sharing digests never wait on each other in a cycle
        select(digests.c.id)
        .where(digests.c.id.in_(mine), digests.c.status == OPEN)
        .order_by(digests.c.id)
        .with_for_update()
    )
    open_ids = [row[0] for row in locked]
    if not open_ids:
        return 0
    taken = await conn.execute(
        delete(digest_events)
        .where(digest_events.c.notification_id == notification_id, digest_events.c.digest_id.in_(open_ids))
        .returning(digest_events.c.delivery_id)
    )
    delivery_ids = [row[0] for row in taken]
    remaining = (
        select(func.count())
        .select_from(digest_events)
        .where(digest_events.c.digest_id == digests.c.id)
        .scalar_subquery()
    )
    await conn.execute(update(digests).where(digests.c.id.in_(open_ids)).values(count=remaining))
    ended = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(delivery_ids), deliveries.c.status == "skipped")
        .values(
            status="cancelled",
            reason="cancelled",
            reason_detail="cancelled by the sender before its digest was sent",
            updated_at=now,
        )
    )
    return int(ended.rowcount)


async def digest_of_notification(conn: AsyncConnection, notification_id: str) -> tuple[Digest, list[str]] | None:
    """The digest a notification sends (and its events' notification ids), None for any other."""
    row = (await conn.execute(select(digests).where(digests.c.notification_id == notification_id))).mappings().first()
    if row is None:
        return None
    digest = Digest.from_row(row)
    return digest, [e.notification_id for e in await events_of(conn, digest.id)]


async def erase_user_digests(conn: AsyncConnection, user_id: str) -> None:
    """A user's digests, their events and the digests' own notifications (they hold the user's
    rendered content); their deliveries go with the user's other deliveries."""
    owned = select(digests.c.id).where(digests.c.user_id == user_id)
    await conn.execute(delete(notifications).where(notifications.c.digest_id.in_(owned)))
    await conn.execute(delete(digest_events).where(digest_events.c.digest_id.in_(owned)))
    await conn.execute(delete(digests).where(digests.c.user_id == user_id))
