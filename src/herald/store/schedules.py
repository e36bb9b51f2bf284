"""Recurring schedules: one row each, moved on by a compare-and-set on ``next_run_at``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.tables import jobs, schedules

JOB_KIND = "schedule"


async def insert_schedule(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(schedules), row)


async def get_schedule(conn: AsyncConnection, schedule_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(schedules).where(schedules.c.id == schedule_id))).mappings().first()
    return dict(row) if row else None


async def list_schedules(
    conn: AsyncConnection, *, before: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first, by (created_at, id), strictly after the cursor ``before``."""
    query = select(schedules).order_by(schedules.c.created_at.desc(), schedules.c.id.desc()).limit(limit)
    if before is not None:
        at, last_id = before
        query = query.where(
            or_(schedules.c.created_at < at, and_(schedules.c.created_at == at, schedules.c.id < last_id))
        )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def delete_schedule(conn: AsyncConnection, schedule_id: str, now: datetime) -> bool:
    """Delete the row, and end its job if it is waiting (a running one finds the row gone and
    writes nothing). False when there is no such schedule."""
    job_id = (
        await conn.execute(delete(schedules).where(schedules.c.id == schedule_id).returning(schedules.c.job_id))
    ).scalar()
    if job_id is None:
        return False
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status.in_(("pending", "failed")))
        .values(status="done", last_error="schedule deleted", updated_at=now)
    )
    return True


async def advance(
    conn: AsyncConnection,
    schedule_id: str,
    *,
    expected: datetime,
    next_run_at: datetime,
    ran_at: datetime | None,
    notification_id: str | None,
    error: str | None,
    missed: int,
    now: datetime,
) -> bool:
    """Move the schedule on to ``next_run_at``, only if it is still due at ``expected``: the
    compare-and-set that makes an occurrence run once. ``ran_at``: the occurrence sent now (with
    its notification), or None; ``error``: why the occurrence due could not be sent."""
    values: dict[str, Any] = {
        "next_run_at": next_run_at,
        "missed": schedules.c.missed + missed,
        "updated_at": now,
    }
    if ran_at is not None:
        values.update(last_run_at=ran_at, last_notification_id=notification_id, runs=schedules.c.runs + 1)
        values["last_error"] = None
    if error is not None:
        values["last_error"] = error
    result = await conn.execute(
        update(schedules).where(schedules.c.id == schedule_id, schedules.c.next_run_at == expected).values(**values)
    )
    return result.rowcount > 0


async def rearm_failed_jobs(conn: AsyncConnection, now: datetime) -> int:
    """Schedule jobs that failed for good (the database was away longer than their retries
    lasted) are due again: a schedule never stops for an outage."""
    result = await conn.execute(
        update(jobs)
        .where(
            jobs.c.kind == JOB_KIND,
            jobs.c.status == "failed",
            jobs.c.id.in_(select(schedules.c.job_id).scalar_subquery()),
        )
        .values(status="pending", attempts=0, run_at=now, lease_owner=None, lease_until=None, updated_at=now)
    )
    return int(result.rowcount)
