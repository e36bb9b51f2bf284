"""The retention purge: old inbox items, deliveries (with their attempts), notifications, finished
jobs and idempotency records deleted in small batches by one recurring background job.

Why a job: the jobs table's lease makes one worker at a time run it, however many there are,
and a worker that dies mid-purge loses nothing (the next run starts again from the oldest rows).
Every worker's housekeeping makes sure the job exists (``schedule``); a run purges for at most
``RUN_SECONDS``, then hands the job back, due at once while old rows remain, else after
``IDLE_SECONDS``. Each batch (at most ``HERALD_RETENTION_BATCH_SIZE`` rows, 1,000 by default, fewer
when a batch takes longer than ``core.retention.BATCH_TARGET_SECONDS``, 50 ms, or on SQLite 10 ms) is its own short
transaction, and the purge rests between batches (``core.retention.pause_after``), so triggers and
sends are never held behind it for longer than one short batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.retention import (
    BATCH_TARGET_SECONDS,
    SQLITE_BATCH_TARGET_SECONDS,
    Purge,
    Retention,
    next_batch_size,
    pause_after,
)
from herald.engine import metrics
from herald.engine.fanout import LostLease
from herald.engine.service import Herald
from herald.store import idempotency as idempotency_store
from herald.store import retention as retention_store
from herald.store.records import Job
from herald.store.types import utcnow

log = logging.getLogger(__name__)

KIND = "retention"
JOB_ID = "job_retention"
"""One job, whatever the number of workers (``store.retention.schedule_job``)."""
RUN_SECONDS = 5.0
"""The longest one run purges before handing the job back (less with a short lease)."""
IDLE_SECONDS = 600.0
"""After a run that found nothing more to purge, the next one is this much later."""
FIRST_DELAY_SECONDS = 60.0
"""A new job's first run waits this long: a fleet that starts (or restarts) does not purge at once."""

Purger = Callable[..., Awaitable[retention_store.Batch]]
PURGERS: dict[Purge, Purger] = {
    Purge.DELIVERIES: retention_store.purge_deliveries,
    Purge.NOTIFICATIONS: retention_store.purge_notifications,
    Purge.JOBS: retention_store.purge_finished_jobs,
    Purge.INBOX: retention_store.purge_inbox_items,
    Purge.IDEMPOTENCY: retention_store.purge_idempotency_keys,
}


def retention_of(herald: Herald) -> Retention:
    settings = herald.settings
    return Retention.of(
        inbox_days=settings.retention_inbox_days,
        deliveries_days=settings.retention_deliveries_days,
        idempotency_hours=settings.retention_idempotency_hours,
    )


async def schedule(herald: Herald, conn: AsyncConnection, now: datetime) -> None:
    """Make sure the purge job exists and will run (idempotent: every worker's housekeeping calls it)."""
    if retention_of(herald).enabled:
        run_at = now + timedelta(seconds=FIRST_DELAY_SECONDS)
        await retention_store.schedule_job(conn, JOB_ID, KIND, run_at=run_at, now=now)


async def purge(herald: Herald, *, budget_seconds: float, now: datetime | None = None) -> tuple[dict[Purge, int], bool]:
    """Purge batch after batch, kind after kind, until nothing is left to purge or the budget is
    spent: the rows deleted per kind, and whether some may be left (the budget ran out)."""
    plan = retention_of(herald).plan(now or utcnow(), replay_window=idempotency_store.TTL)
    most = herald.settings.retention_batch_size
    target = SQLITE_BATCH_TARGET_SECONDS if herald.db.is_sqlite else BATCH_TARGET_SECONDS
    started = time.monotonic()
    purged: dict[Purge, int] = {}
    for kind, before in plan:
        size, after = most, None
        while True:
            clock = time.monotonic()
            async with herald.db.write() as conn:
                batch = await PURGERS[kind](conn, before=before, limit=size, after=after)
            took = time.monotonic() - clock
            if batch.deleted:
                purged[kind] = purged.get(kind, 0) + batch.deleted
                metrics.retention_purged_rows.labels(kind.value).inc(batch.deleted)
            if not batch.more:
                break  # this kind is done: on to the next
            size, after = next_batch_size(size, took, most=most, target=target), batch.after
            if time.monotonic() - started + pause_after(took) >= budget_seconds:
                _log(purged, time.monotonic() - started, more=True)
                return purged, True
            await asyncio.sleep(pause_after(took))
    _log(purged, time.monotonic() - started, more=False)
    return purged, False


def _log(purged: dict[Purge, int], seconds: float, *, more: bool) -> None:
    if purged:
        counts = ", ".join(f"{n} {kind.value}" for kind, n in purged.items())
        log.info("retention: purged %s in %.1f s%s", counts, seconds, "; more to purge" if more else "")


class RetentionJobHandler:
    """Handles the ``retention`` job: one run of the purge, then the job is due again."""

    kind = KIND

    def __init__(self, herald: Herald) -> None:
        self._herald = herald

    async def __call__(self, job: Job, owner: str) -> None:
        herald = self._herald
        budget = min(RUN_SECONDS, herald.settings.lease_seconds * 0.5)
        _, more = await purge(herald, budget_seconds=budget)
        now = utcnow()
        run_at = now if more else now + timedelta(seconds=IDLE_SECONDS)
        async with herald.db.write() as conn:
            if not await retention_store.reschedule_job(conn, job.id, owner=owner, run_at=run_at, now=now):
                raise LostLease(job.id)
        if more:
            herald.wake_worker()
