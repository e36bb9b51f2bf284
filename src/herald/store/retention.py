"""The retention purge's statements: each deletes one batch of at most ``limit`` of the oldest
purgeable rows of one table and says how it went (``Batch``).

A batch is two statements, meant to be their own short transaction (``engine/retention.py``): the
ids of the oldest rows, read by an index range scan from the oldest (migration 0018), then a DELETE
of those ids by primary key, which tests the row again (one that changed in between stays). Two
statements, not ``DELETE … WHERE id IN (SELECT … LIMIT n)``: for that one PostgreSQL may choose a
hash join over a scan of the whole table, every batch. A batch holds its row locks for
milliseconds, never the minutes one DELETE of a million rows would, and two purges at once are
harmless: a row deleted by one is simply not there for the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, exists, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.tables import (
    deliveries,
    digests,
    idempotency_keys,
    inbox_items,
    inbox_responses,
    jobs,
    notifications,
    schedules,
)

FINISHED_JOB = ("done", "failed")
# The predicates of the partial indexes ix_deliveries_ended and ix_jobs_finished, written as they
# are (literal values): a planner uses a partial index only for a WHERE it can see implies the
# index's own, which bound parameters (what ``status.in_(…)`` sends) never show SQLite.
ENDED = text("status NOT IN ('pending', 'sending')")
"""A delivery that ended. ``pending`` and ``sending`` ones (the work queue) are never purged."""
FINISHED = text("status IN ('done', 'failed')")
KEPT_NOTIFICATION = ("scheduled", "expanding")
"""A notification still to be sent or being expanded is kept, whatever its age (its deliveries
do not exist yet)."""

Key = tuple[datetime, str]


@dataclass(frozen=True)
class Batch:
    deleted: int
    more: bool
    """The batch was full: rows to purge may be left."""
    after: Key | None = None
    """Where the next batch of this table starts (tables whose batches pass over rows they keep)."""


async def _oldest_ids(conn: AsyncConnection, query: Any) -> list[str]:
    return [r[0] for r in await conn.execute(query)]


async def _delete_ids(conn: AsyncConnection, table: Table, ids: Sequence[str], *still: Any) -> int:
    if not ids:
        return 0
    result = await conn.execute(delete(table).where(table.c.id.in_(list(ids)), *still))
    return int(result.rowcount)


async def purge_inbox_items(conn: AsyncConnection, *, before: datetime, limit: int, after: Key | None = None) -> Batch:
    """Inbox items created before ``before``, read or not (``ix_inbox_items_created_at``)."""
    old = inbox_items.c.created_at < before  # tested again: a merge moves an item to the top
    ids = await _oldest_ids(conn, select(inbox_items.c.id).where(old).order_by(inbox_items.c.created_at).limit(limit))
    return Batch(await _delete_ids(conn, inbox_items, ids, old), more=len(ids) == limit)


async def purge_deliveries(conn: AsyncConnection, *, before: datetime, limit: int, after: Key | None = None) -> Batch:
    """Deliveries that ended (any status but pending and sending) before ``before``, by their last
    change (``ix_deliveries_ended``); their attempts go with them (ON DELETE CASCADE)."""
    old = and_(ENDED, deliveries.c.updated_at < before)
    ids = await _oldest_ids(conn, select(deliveries.c.id).where(old).order_by(deliveries.c.updated_at).limit(limit))
    return Batch(await _delete_ids(conn, deliveries, ids, old), more=len(ids) == limit)


async def purge_notifications(
    conn: AsyncConnection, *, before: datetime, limit: int, after: Key | None = None
) -> Batch:
    """Notifications created before ``before`` that no delivery refers to any longer (those of
    the deliveries age went first), and that are not still to be sent, with the users' answers to
    their actions and, for a digest's own notification, the digest. Their inbox items keep their
    own copy of the content and live by the inbox's age.

    The batch walks ``ix_notifications_created_at`` from ``after``: a notification kept (a delivery
    of it is still there) is passed over, not read again by every following batch."""
    query = select(notifications.c.id, notifications.c.created_at).where(notifications.c.created_at < before)
    if after is not None:
        query = query.where(tuple_(notifications.c.created_at, notifications.c.id) > tuple_(*after))
    rows = list(await conn.execute(query.order_by(notifications.c.created_at, notifications.c.id).limit(limit)))
    if not rows:
        return Batch(0, more=False)
    candidates = [r[0] for r in rows]
    # Those a delivery still refers to, by ix_deliveries_notification_id: a separate statement, as
    # a NOT EXISTS in the DELETE lets PostgreSQL choose an anti join over a scan of every delivery.
    # No delivery is added to an old notification in between: only a fan-out adds them, to a
    # notification still ``expanding`` (kept).
    referred = select(deliveries.c.notification_id).where(deliveries.c.notification_id.in_(candidates)).distinct()
    in_use = {r[0] for r in await conn.execute(referred)}
    result = await conn.execute(
        delete(notifications)
        .where(
            notifications.c.id.in_([c for c in candidates if c not in in_use]),
            notifications.c.status.not_in(KEPT_NOTIFICATION),
        )
        .returning(notifications.c.id)
    )
    purged = [r[0] for r in result]
    if purged:  # what exists only for these notifications goes with them (each by its notification index)
        await conn.execute(delete(inbox_responses).where(inbox_responses.c.notification_id.in_(purged)))
        await conn.execute(delete(digests).where(digests.c.notification_id.in_(purged)))  # events: CASCADE
    last = rows[-1]
    return Batch(len(purged), more=len(rows) == limit, after=(last[1], last[0]))


async def purge_finished_jobs(
    conn: AsyncConnection, *, before: datetime, limit: int, after: Key | None = None
) -> Batch:
    """Background jobs that finished (done or failed) before ``before`` (``ix_jobs_finished``),
    but never a recurring schedule's job: a failed one is re-armed (``store.schedules``)."""
    old = and_(FINISHED, jobs.c.updated_at < before)
    ids = await _oldest_ids(conn, select(jobs.c.id).where(old).order_by(jobs.c.updated_at).limit(limit))
    of_a_schedule = exists().where(schedules.c.job_id == jobs.c.id)
    return Batch(await _delete_ids(conn, jobs, ids, old, ~of_a_schedule), more=len(ids) == limit)


async def purge_idempotency_keys(
    conn: AsyncConnection, *, before: datetime, limit: int, after: Key | None = None
) -> Batch:
    """Idempotency records whose replay window ended before ``before``
    (``ix_idempotency_keys_expires_at``), deleted by primary key: one statement per API key (the
    scope) among them, usually one."""
    expiry = idempotency_keys.c.expires_at
    query = select(idempotency_keys.c.scope, idempotency_keys.c.key).where(expiry < before)
    rows = list(await conn.execute(query.order_by(expiry).limit(limit)))
    by_scope: dict[str, list[str]] = {}
    for scope, key in rows:
        by_scope.setdefault(scope, []).append(key)
    deleted = 0
    for scope, keys in by_scope.items():
        result = await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.key.in_(keys), expiry < before
            )
        )
        deleted += int(result.rowcount)
    return Batch(deleted, more=len(rows) == limit)


# -- the purge's own job ---------------------------------------------------------------------------


async def schedule_job(conn: AsyncConnection, job_id: str, kind: str, *, run_at: datetime, now: datetime) -> None:
    """Make sure the job ``job_id`` exists and will run: inserted if missing, due again at
    ``run_at`` if it had finished or failed; left alone while pending or running. A fixed id, so
    however many workers do this, there is one such job (and one purge at a time)."""
    stmt = upsert(conn, jobs).values(
        id=job_id,
        kind=kind,
        payload={},
        status="pending",
        priority=2,
        attempts=0,
        run_at=run_at,
        created_at=now,
        updated_at=now,
    )
    revive = {"status": "pending", "attempts": 0, "run_at": run_at, "last_error": None, "updated_at": now}
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[jobs.c.id], set_=revive, where=jobs.c.status.in_(FINISHED_JOB))
    )


async def reschedule_job(conn: AsyncConnection, job_id: str, *, owner: str, run_at: datetime, now: datetime) -> bool:
    """A recurring job done for now: pending again, due at ``run_at``, with its attempts reset (it
    did not fail), if ``owner`` still holds it."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
        .values(status="pending", lease_owner=None, lease_until=None, run_at=run_at, attempts=0, updated_at=now)
    )
    return result.rowcount > 0
