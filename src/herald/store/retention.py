"""The retention purge's statements: each deletes at most ``limit`` of the oldest purgeable rows
of one table, found by an index range scan from the oldest (migration 0018), and says how many.

Each call is meant to be its own short transaction (``engine/retention.py``): a batch holds its
row locks for milliseconds, never the minutes one DELETE of a million rows would. The statements
are safe to run twice at once: a row deleted by one is simply not there for the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, select, tuple_, update
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

LIVE_DELIVERY = ("pending", "sending")
"""Never purged, whatever their age: the work queue."""
FINISHED_JOB = ("done", "failed")
KEPT_NOTIFICATION = ("scheduled", "expanding")
"""A notification still to be sent or being expanded is kept, whatever its age (its deliveries
do not exist yet)."""


async def purge_inbox_items(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Inbox items created before ``before``, read or not (``ix_inbox_items_created_at``)."""
    oldest = select(inbox_items.c.id).where(inbox_items.c.created_at < before)
    oldest = oldest.order_by(inbox_items.c.created_at).limit(limit)
    result = await conn.execute(delete(inbox_items).where(inbox_items.c.id.in_(oldest.scalar_subquery())))
    return int(result.rowcount)


async def purge_deliveries(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Deliveries that ended (any status but pending and sending) before ``before``, by their last
    change (``ix_deliveries_ended``); their attempts go with them (ON DELETE CASCADE)."""
    ended = deliveries.c.status.not_in(LIVE_DELIVERY)
    oldest = select(deliveries.c.id).where(ended, deliveries.c.updated_at < before)
    oldest = oldest.order_by(deliveries.c.updated_at).limit(limit)
    # the status is tested again on the row itself: one that went live in between stays
    result = await conn.execute(delete(deliveries).where(deliveries.c.id.in_(oldest.scalar_subquery()), ended))
    return int(result.rowcount)


async def purge_notifications(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Notifications created before ``before`` that no delivery refers to any longer (those of
    the deliveries age went first), and that are not still to be sent, with the users' answers to
    their actions and, for a digest's own notification, the digest. Their inbox items keep their
    own copy of the content and live by the inbox's age."""
    some_delivery = exists().where(deliveries.c.notification_id == notifications.c.id)
    purgeable = and_(notifications.c.status.not_in(KEPT_NOTIFICATION), ~some_delivery)
    oldest = select(notifications.c.id).where(notifications.c.created_at < before, purgeable)
    oldest = oldest.order_by(notifications.c.created_at).limit(limit)
    result = await conn.execute(
        delete(notifications)
        .where(notifications.c.id.in_(oldest.scalar_subquery()), purgeable)
        .returning(notifications.c.id)
    )
    purged = [r[0] for r in result]
    if purged:  # what exists only for these notifications goes with them (each by its notification index)
        await conn.execute(delete(inbox_responses).where(inbox_responses.c.notification_id.in_(purged)))
        await conn.execute(delete(digests).where(digests.c.notification_id.in_(purged)))  # events: CASCADE
    return len(purged)


async def purge_finished_jobs(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Background jobs that finished (done or failed) before ``before`` (``ix_jobs_finished``),
    but never a recurring schedule's job: a failed one is re-armed (``store.schedules``)."""
    of_a_schedule = exists().where(schedules.c.job_id == jobs.c.id)
    finished = and_(jobs.c.status.in_(FINISHED_JOB), ~of_a_schedule)
    oldest = select(jobs.c.id).where(finished, jobs.c.updated_at < before).order_by(jobs.c.updated_at).limit(limit)
    result = await conn.execute(delete(jobs).where(jobs.c.id.in_(oldest.scalar_subquery()), finished))
    return int(result.rowcount)


async def purge_idempotency_keys(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Idempotency records whose replay window ended before ``before`` (``ix_idempotency_keys_expires_at``)."""
    key = tuple_(idempotency_keys.c.scope, idempotency_keys.c.key)
    oldest = select(idempotency_keys.c.scope, idempotency_keys.c.key).where(idempotency_keys.c.expires_at < before)
    oldest = oldest.order_by(idempotency_keys.c.expires_at).limit(limit)
    result = await conn.execute(delete(idempotency_keys).where(key.in_(oldest)))
    return int(result.rowcount)


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
