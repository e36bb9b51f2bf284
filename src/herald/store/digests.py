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

from sqlalchemy import case, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.ids import new_id
from herald.store import jobs as job_store
from herald.store.dialect import upsert
from herald.store.tables import deliveries, digest_events, digests, notifications

OPEN, CLOSING, FLUSHED = "open", "closing", "flushed"
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
    conn: AsyncConnection, event: NewEvent, *, window_seconds: int, max_items: int, now: datetime
) -> Collected:
    """Add ``event`` to the user's open digest for its type and channel, opening one (with its own
    notification and its flush job due at the window's end) if there is none. Idempotent per
    delivery: an event collected before (a delivery handled again after a crash) is not added twice."""
    before = await _digest_of_event(conn, event.delivery_id)
    if before is not None:
        return Collected(before, full=False)
    for _ in range(OPEN_TRIES):
        digest = await _open_digest(conn, event) or await _start_digest(conn, event, window_seconds, max_items, now)
        if digest is None:
            continue  # another worker opened it between our two statements: join theirs
        joined = await _join(conn, digest.id, now)
        if joined is None:
            continue  # it closed (flushed, or filled) meanwhile: the next window
        count, status = joined
        await conn.execute(
            insert(digest_events).values(
                delivery_id=event.delivery_id,
                digest_id=digest.id,
                position=count,
                notification_id=event.notification_id,
                created_at=event.occurred_at,
            )
        )
        full = status == CLOSING
        if full:  # max_items reached: flushed now (the window's own job will find it done)
            await job_store.enqueue_job(
                conn, JOB_KIND, {"digest_id": digest.id}, run_at=now, now=now, priority=event.rank
            )
        return Collected(_replace_count(digest, count, status), full=full)
    raise RuntimeError(f"could not collect delivery {event.delivery_id} into a digest after {OPEN_TRIES} tries")


def _replace_count(digest: Digest, count: int, status: str) -> Digest:
    return Digest(**{**{f.name: getattr(digest, f.name) for f in fields(Digest)}, "count": count, "status": status})


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


async def _open_digest(conn: AsyncConnection, event: NewEvent) -> Digest | None:
    row = (
        (
            await conn.execute(
                select(digests).where(
                    digests.c.user_id == event.user_id,
                    digests.c.type_key == event.type_key,
                    digests.c.channel == event.channel,
                    digests.c.status == OPEN,
                )
            )
        )
        .mappings()
        .first()
    )
    return Digest.from_row(row) if row else None


async def _start_digest(
    conn: AsyncConnection, event: NewEvent, window_seconds: int, max_items: int, now: datetime
) -> Digest | None:
    """Open a digest (the window starts with this first event), or None if another worker just did."""
    digest = Digest(
        id=new_id("dgs"),
        user_id=event.user_id,
        type_key=event.type_key,
        channel=event.channel,
        status=OPEN,
        notification_id=new_id("ntf"),
        count=0,
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


async def _join(conn: AsyncConnection, digest_id: str, now: datetime) -> tuple[int, str] | None:
    """Count one more event in the digest if it is still open: its new count and status (closing
    once it holds max_items); None if it is not open any more."""
    result = await conn.execute(
        update(digests)
        .where(digests.c.id == digest_id, digests.c.status == OPEN)
        .values(
            count=digests.c.count + 1,
            status=case((digests.c.count + 1 >= digests.c.max_items, CLOSING), else_=OPEN),
            updated_at=now,
        )
        .returning(digests.c.count, digests.c.status)
    )
    row = result.first()
    return (int(row[0]), str(row[1])) if row else None


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
