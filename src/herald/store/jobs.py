"""The small generic jobs table: large fan-outs (and later digests, schedules, retention)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.ids import new_id
from herald.store.queue import Queue, lease_due_rows, notify_work
from herald.store.records import Job
from herald.store.tables import jobs

QUEUE = Queue(jobs, due_column="run_at", live_statuses=("pending", "running"), leased_status="running")


async def enqueue_job(
    conn: AsyncConnection, kind: str, payload: dict[str, Any], *, run_at: datetime, now: datetime, priority: int = 1
) -> str:
    job_id = new_id("job")
    await conn.execute(
        insert(jobs).values(
            id=job_id,
            kind=kind,
            payload=payload,
            status="pending",
            priority=priority,
            attempts=0,
            run_at=run_at,
            created_at=now,
            updated_at=now,
        )
    )
    if run_at <= now:
        await notify_work(conn)
    return job_id


async def claim_due_jobs(
    conn: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[Job]:
    """Lease due jobs, like deliveries (queue.py)."""
    rows = await lease_due_rows(conn, QUEUE, owner=owner, now=now, lease_until=lease_until, limit=limit)
    return [Job.from_row(r) for r in rows]


async def save_job_progress(
    conn: AsyncConnection,
    job_id: str,
    *,
    owner: str,
    payload: dict[str, Any],
    lease_until: datetime,
    now: datetime,
    release: bool = False,
) -> bool:
    """Store a chunk's progress, only if this worker still owns the job; then either extend the
    lease or (``release``) hand the job back as due now, so other work can run in between.

    Called in the same transaction as the chunk's inserts: when it returns False the caller
    rolls back, so a chunk is committed once even if two workers raced for the job.
    """
    values: dict[str, Any] = {"payload": payload, "updated_at": now}
    if release:
        # handed back between chunks, not failed: the claim's attempt is undone, so a long fan-out
        # does not run out of attempts without ever failing
        values.update(status="pending", lease_owner=None, lease_until=None, run_at=now, attempts=jobs.c.attempts - 1)
    else:
        values.update(lease_until=lease_until, run_at=lease_until)
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
        .values(**values)
    )
    return result.rowcount > 0


async def finish_job(
    conn: AsyncConnection, job_id: str, *, owner: str, status: str, now: datetime, error: str | None = None
) -> bool:
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
        .values(status=status, lease_owner=None, lease_until=None, last_error=error, updated_at=now)
    )
    return result.rowcount > 0


async def retry_job(
    conn: AsyncConnection, job_id: str, *, owner: str, run_at: datetime, error: str, now: datetime
) -> bool:
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
        .values(status="pending", lease_owner=None, lease_until=None, run_at=run_at, last_error=error, updated_at=now)
    )
    return result.rowcount > 0


async def reschedule_job(conn: AsyncConnection, job_id: str, *, owner: str, run_at: datetime, now: datetime) -> bool:
    """A recurring job (a schedule's) done for now: due again at ``run_at`` with its attempts
    reset, only if this worker still owns it. The caller rolls back when it returns False."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
        .values(status="pending", lease_owner=None, lease_until=None, run_at=run_at, attempts=0, last_error=None)
        .values(updated_at=now)
    )
    return result.rowcount > 0
