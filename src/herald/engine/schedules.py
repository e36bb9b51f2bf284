"""Recurring sends: a cron expression in a timezone, and a trigger body each occurrence sends.

A schedule is one row and one ``schedule`` job in the jobs table, due at the row's
``next_run_at``: the worker claims it like any job (within its poll interval of that time, a
second by default, or at once when woken), so an occurrence goes out on time, not at the next
housekeeping round. The job's run writes the occurrence in ONE transaction:

- the job is handed back due at the next occurrence (only if this worker still owns it);
- the schedule row moves on with a compare-and-set on ``next_run_at`` (only if it is still due
  at the time this run read);
- the occurrence's notification, marked with the schedule id and the occurrence time (unique
  together), with all its work (``trigger.write_prepared``).

So an occurrence is written exactly once, however many workers run and whatever lease expires
under a slow one: a second run of the same occurrence fails the compare-and-set and writes
nothing. After downtime only the most recent occurrence is sent, if it is recent enough
(core/schedules.py ``plan_run``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.errors import Invalid, NotFound
from herald.core.ids import new_id
from herald.core.schedules import Cron, Run, cron_problem, plan_run
from herald.engine import trigger as trigger_engine
from herald.engine.fanout import LostLease
from herald.engine.service import Herald
from herald.store import jobs as job_store
from herald.store import schedules as schedule_store
from herald.store.records import Job
from herald.store.types import utcnow

log = logging.getLogger(__name__)
JOB_PRIORITY = 0
"""Schedule jobs are claimed before fan-outs: they are small, and late is wrong."""
DEFAULT_CATCH_UP_SECONDS = 3600


@dataclass(frozen=True)
class NewSchedule:
    cron: str
    timezone: str
    trigger: trigger_engine.TriggerRequest
    name: str | None = None
    catch_up_seconds: int = DEFAULT_CATCH_UP_SECONDS


def stored_trigger(req: trigger_engine.TriggerRequest) -> dict[str, Any]:
    """The trigger as the schedule row keeps it: the request's fields that are set."""
    return {k: v for k, v in dataclasses.asdict(req).items() if v is not None}


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


async def check_schedule(herald: Herald, new: NewSchedule, *, now: datetime) -> Cron:
    """The schedule's cron on its timezone; or Invalid naming every field that is wrong, the
    trigger's as a real trigger would name them, under ``trigger.``."""
    errors: list[tuple[str, str]] = []
    problem = cron_problem(new.cron)
    if problem is not None:
        errors.append(("cron", problem))
    zone = _zone(new.timezone)
    if zone is None:
        errors.append(("timezone", "not an IANA time zone name"))
    if new.trigger.send_at is not None:
        errors.append(("trigger.send_at", "a schedule's trigger takes no send_at: the cron expression says when"))
    if new.trigger.expires_at is not None:
        why = "a schedule's trigger takes no expires_at: each occurrence expires by its type's TTL"
        errors.append(("trigger.expires_at", why))
    try:
        await trigger_engine.prepare(herald, new.trigger, now=now)
    except Invalid as exc:
        errors += [(f"trigger.{field}", message) for field, message in exc.errors]
    if errors:
        raise Invalid(errors)
    assert zone is not None
    return Cron(new.cron.strip(), zone)


async def create_schedule(
    herald: Herald,
    new: NewSchedule,
    *,
    now: datetime | None = None,
    on_created: Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Check everything (Invalid naming each field), then write the row and its job, due at the
    first occurrence after ``now``. ``on_created`` runs in that transaction, last."""
    now = now or utcnow()
    cron = await check_schedule(herald, new, now=now)
    next_run_at = cron.next_after(now)
    schedule_id = new_id("sch")
    async with herald.db.write() as conn:
        job_id = await job_store.enqueue_job(
            conn,
            schedule_store.JOB_KIND,
            {"schedule_id": schedule_id},
            run_at=next_run_at,
            now=now,
            priority=JOB_PRIORITY,
        )
        row = {
            "id": schedule_id,
            "name": new.name,
            "cron": cron.expression,
            "timezone": new.timezone,
            "trigger": stored_trigger(new.trigger),
            "catch_up_seconds": new.catch_up_seconds,
            "next_run_at": next_run_at,
            "job_id": job_id,
            "last_run_at": None,
            "last_notification_id": None,
            "last_error": None,
            "runs": 0,
            "missed": 0,
            "created_at": now,
            "updated_at": now,
        }
        await schedule_store.insert_schedule(conn, row)
        if on_created is not None:
            await on_created(conn, row)
    log.info("schedule %s created: %r in %s, first run %s", schedule_id, cron.expression, new.timezone, next_run_at)
    return row


async def delete_schedule(herald: Herald, schedule_id: str) -> None:
    """NotFound when there is no such schedule. No occurrence is written after this commits."""
    async with herald.db.write() as conn:
        if not await schedule_store.delete_schedule(conn, schedule_id, utcnow()):
            raise NotFound("schedule")


# -- running an occurrence -----------------------------------------------------------------------


class ScheduleJobHandler:
    """Handles ``schedule`` jobs. ``clock`` is the time the runs plan with (tests move it)."""

    kind = schedule_store.JOB_KIND

    def __init__(self, herald: Herald, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._herald = herald
        self._clock = clock

    async def __call__(self, job: Job, owner: str) -> None:
        await run_schedule_job(self._herald, job, owner=owner, now=self._clock())


async def _prepare_occurrence(
    herald: Herald, schedule: dict[str, Any], occurrence: datetime, now: datetime
) -> trigger_engine.Prepared | str:
    """The occurrence's notification, checked and rendered as a trigger now; or why it cannot be
    sent (its type was deleted, a template now needs a variable the data lacks, ...)."""
    try:
        req = trigger_engine.TriggerRequest(**schedule["trigger"])
        prepared = await trigger_engine.prepare(herald, req, now=now)
    except Invalid as exc:
        return "; ".join(f"trigger.{field}: {message}" for field, message in exc.errors)
    except TypeError as exc:  # a stored trigger this version cannot read
        return f"trigger: {exc}"
    prepared.notification["schedule_id"] = schedule["id"]
    prepared.notification["occurrence_at"] = occurrence
    return prepared


async def run_schedule_job(herald: Herald, job: Job, *, owner: str, now: datetime | None = None) -> None:
    """Send the occurrence that is due (if any), and hand the job back due at the next one."""
    now = now or utcnow()
    schedule_id = job.payload["schedule_id"]
    async with herald.db.read() as conn:
        schedule = await schedule_store.get_schedule(conn, schedule_id)
    if schedule is None:
        await _finish(herald, job, owner, now)
        return
    cron = Cron(schedule["cron"], ZoneInfo(schedule["timezone"]))
    run = plan_run(cron, schedule["next_run_at"], now, timedelta(seconds=schedule["catch_up_seconds"]))
    prepared: trigger_engine.Prepared | None = None
    error = None
    if run.occurrence is not None:
        outcome = await _prepare_occurrence(herald, schedule, run.occurrence, now)
        if isinstance(outcome, str):
            error = outcome
        else:
            prepared = outcome
    async with herald.db.write() as conn:
        if not await job_store.reschedule_job(conn, job.id, owner=owner, run_at=run.next_run_at, now=now):
            await conn.rollback()
            raise LostLease(job.id)
        if not await _advance(conn, schedule, run, prepared, error, now):
            # deleted meanwhile, or this occurrence was already run under an expired lease of ours
            await conn.rollback()
            await _finish_if_deleted(herald, job, owner, schedule_id, now)
            return
        if prepared is not None:
            await trigger_engine.write_prepared(herald, conn, [prepared], now=now)
    if prepared is not None:
        trigger_engine.after_commit(herald, [prepared])
        log.info("schedule %s: occurrence %s sent as %s", schedule_id, run.occurrence, prepared.accepted.id)
    elif error is not None:
        log.warning("schedule %s: occurrence %s not sent: %s", schedule_id, run.occurrence, error)
    if run.missed:
        log.info("schedule %s: %d occurrence(s) missed (catch-up window passed)", schedule_id, run.missed)


async def _advance(
    conn: AsyncConnection,
    schedule: dict[str, Any],
    run: Run,
    prepared: trigger_engine.Prepared | None,
    error: str | None,
    now: datetime,
) -> bool:
    return await schedule_store.advance(
        conn,
        schedule["id"],
        expected=schedule["next_run_at"],
        next_run_at=run.next_run_at,
        ran_at=run.occurrence if prepared is not None else None,
        notification_id=prepared.accepted.id if prepared is not None else None,
        error=error,
        missed=run.missed + (1 if error is not None else 0),
        now=now,
    )


async def _finish(herald: Herald, job: Job, owner: str, now: datetime) -> None:
    async with herald.db.write() as conn:
        await job_store.finish_job(conn, job.id, owner=owner, status="done", now=now)


async def _finish_if_deleted(herald: Herald, job: Job, owner: str, schedule_id: str, now: datetime) -> None:
    async with herald.db.write() as conn:
        if await schedule_store.get_schedule(conn, schedule_id) is None:
            await job_store.finish_job(conn, job.id, owner=owner, status="done", now=now)
            return
    raise LostLease(job.id)


async def rearm_failed_jobs(herald: Herald) -> None:
    """Housekeeping: schedules whose job gave up during an outage run again (catch-up applies)."""
    async with herald.db.write() as conn:
        rearmed = await schedule_store.rearm_failed_jobs(conn, utcnow())
    if rearmed:
        log.warning("re-armed %d schedule job(s) that had failed", rearmed)
