"""Schedules run by workers: each occurrence exactly once, on time, DST-correct, caught up sensibly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from herald.engine import schedules as schedule_engine
from herald.engine.fanout import LostLease
from herald.engine.trigger import TriggerRequest
from herald.engine.worker import Worker, default_job_handlers
from herald.store import jobs as job_store
from herald.store import schedules as schedule_store
from herald.store.tables import inbox_items, jobs, notifications, users
from herald.store.types import utcnow
from tests.conftest import Harness


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class Clock:
    """The time the schedule runs plan with (the worker's claims keep the real time)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def worker_at(h: Harness, clock: Callable[[], datetime]) -> Worker:
    handlers = default_job_handlers(h.herald)
    handlers["schedule"] = schedule_engine.ScheduleJobHandler(h.herald, clock=clock)
    return Worker(h.herald, handlers=handlers)


async def create(
    h: Harness, cron: str, tz: str, at: datetime, *, to: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    req = TriggerRequest(type="recharge.succeeded", to=to or ["u1"], data={"amount": "5"})
    new = schedule_engine.NewSchedule(cron=cron, timezone=tz, trigger=req, **extra)
    return await schedule_engine.create_schedule(h.herald, new, now=at)


async def make_due(h: Harness) -> None:
    """The schedule jobs are due by the real clock (their run_at is in the simulated future)."""
    async with h.herald.db.write() as conn:
        await conn.execute(update(jobs).where(jobs.c.kind == "schedule").values(run_at=utcnow() - timedelta(seconds=1)))


async def occurrences(h: Harness) -> list[datetime]:
    async with h.herald.db.read() as conn:
        rows = await conn.execute(select(notifications.c.occurrence_at).order_by(notifications.c.occurrence_at))
        return [r[0] for r in rows]


async def schedule_row(h: Harness, schedule_id: str) -> dict[str, Any]:
    async with h.herald.db.read() as conn:
        row = await schedule_store.get_schedule(conn, schedule_id)
    assert row is not None
    return row


async def run_at(h: Harness, clock: Clock, at: datetime, workers: int = 1) -> None:
    clock.at = at
    await make_due(h)
    await asyncio.gather(*(worker_at(h, clock).run_once() for _ in range(workers)))


async def test_an_occurrence_is_sent_with_its_marker(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 4, 0, 30))
    s = await create(harness, "0 9 * * 1-5", "Asia/Shanghai", clock.at, to=["u1", "u2"])
    assert s["next_run_at"] == utc(2027, 1, 4, 1)  # Monday 09:00 in Shanghai
    await run_at(harness, clock, utc(2027, 1, 4, 1, 0, 0, 400_000))
    assert await occurrences(harness) == [utc(2027, 1, 4, 1)]
    row = await schedule_row(harness, s["id"])
    assert row["next_run_at"] == utc(2027, 1, 5, 1) and row["runs"] == 1 and row["missed"] == 0
    assert row["last_run_at"] == utc(2027, 1, 4, 1)
    r = await harness.client.get(f"/v1/notifications/{row['last_notification_id']}", headers=harness.reader())
    assert r.json()["schedule"] == {"id": s["id"], "occurrence_at": "2027-01-04T01:00:00+00:00"}
    inbox = (await harness.client.get("/v1/me/inbox", headers=harness.user("u2"))).json()
    assert [i["summary"] for i in inbox["items"]] == ["充值 5 元"]


@pytest.mark.parametrize("workers", [2, 4])
async def test_racing_workers_send_each_occurrence_once(harness: Harness, inbox_type: str, workers: int) -> None:
    clock = Clock(utc(2027, 1, 1, 0, 0, 30))
    await create(harness, "* * * * *", "UTC", clock.at)
    for minute in range(1, 6):
        await run_at(harness, clock, utc(2027, 1, 1, 0, minute, 1), workers=workers)
    assert await occurrences(harness) == [utc(2027, 1, 1, 0, m) for m in range(1, 6)]


async def test_two_jobs_for_one_schedule_still_send_once(harness: Harness, inbox_type: str) -> None:
    """The compare-and-set on next_run_at, not the job's lease, is what makes it once: a second job
    for the same schedule (restored from a backup, say) racing the first writes nothing."""
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at)
    async with harness.herald.db.write() as conn:
        await job_store.enqueue_job(conn, "schedule", {"schedule_id": s["id"]}, run_at=clock.at, now=clock.at)
    await run_at(harness, clock, utc(2027, 1, 1, 9, 0, 2), workers=2)
    await run_at(harness, clock, utc(2027, 1, 1, 9, 0, 3), workers=2)
    assert await occurrences(harness) == [utc(2027, 1, 1, 9)]


async def test_a_run_under_a_lost_lease_writes_nothing(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at)
    await make_due(harness)
    now = utcnow()
    async with harness.herald.db.write() as conn:
        (job_a,) = await job_store.claim_due_jobs(conn, owner="A", now=now, lease_until=now, limit=1)
    async with harness.herald.db.write() as conn:  # A's lease ran out (it is slow): B takes the job
        (job_b,) = await job_store.claim_due_jobs(
            conn, owner="B", now=now + timedelta(seconds=1), lease_until=now + timedelta(minutes=1), limit=1
        )
    assert job_a.id == job_b.id == s["job_id"]
    at = utc(2027, 1, 1, 9, 0, 1)
    results = await asyncio.gather(
        schedule_engine.run_schedule_job(harness.herald, job_a, owner="A", now=at),
        schedule_engine.run_schedule_job(harness.herald, job_b, owner="B", now=at),
        return_exceptions=True,
    )
    assert isinstance(results[0], LostLease) and results[1] is None
    assert await occurrences(harness) == [utc(2027, 1, 1, 9)]


async def test_the_occurrence_marker_is_unique(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at)
    await run_at(harness, clock, utc(2027, 1, 1, 9, 0, 1))
    async with harness.herald.db.read() as conn:
        row = dict((await conn.execute(select(notifications))).mappings().one())
    row["id"] = "ntf_copy"
    with pytest.raises(IntegrityError):
        async with harness.herald.db.write() as conn:
            await conn.execute(insert(notifications).values(**row))
    assert row["schedule_id"] == s["id"]


async def test_spring_forward_a_time_in_the_skipped_hour_fires_once(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 3, 13, 12))  # New York skips 02:00-03:00 on 2027-03-14
    s = await create(harness, "30 2 * * *", "America/New_York", clock.at)
    assert s["next_run_at"] == utc(2027, 3, 14, 7)  # 03:00 EDT: the first instant after the gap
    await run_at(harness, clock, utc(2027, 3, 14, 7, 0, 1))
    await run_at(harness, clock, utc(2027, 3, 14, 7, 30, 1))  # 03:30 EDT: early for the next one
    assert (await schedule_row(harness, s["id"]))["next_run_at"] == utc(2027, 3, 15, 6, 30)  # 02:30 EDT
    await run_at(harness, clock, utc(2027, 3, 15, 6, 30, 1))
    assert await occurrences(harness) == [utc(2027, 3, 14, 7), utc(2027, 3, 15, 6, 30)]


async def test_fall_back_a_fixed_time_in_the_repeated_hour_fires_once(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 11, 6, 12))  # New York repeats 01:00-02:00 on 2027-11-07
    s = await create(harness, "30 1 * * *", "America/New_York", clock.at)
    await run_at(harness, clock, utc(2027, 11, 7, 5, 30, 1))  # 01:30 EDT
    await run_at(harness, clock, utc(2027, 11, 7, 6, 30, 1))  # 01:30 EST: not again
    assert (await schedule_row(harness, s["id"]))["next_run_at"] == utc(2027, 11, 8, 6, 30)
    assert await occurrences(harness) == [utc(2027, 11, 7, 5, 30)]


async def test_after_downtime_only_the_latest_occurrence_is_sent(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 * * * *", "UTC", clock.at)
    await run_at(harness, clock, utc(2027, 1, 1, 14, 20))  # down from before 09:00 until 14:20
    assert await occurrences(harness) == [utc(2027, 1, 1, 14)]  # not 9, 10, 11, 12, 13 in a burst
    row = await schedule_row(harness, s["id"])
    assert row["missed"] == 5 and row["runs"] == 1 and row["next_run_at"] == utc(2027, 1, 1, 15)


async def test_after_downtime_an_occurrence_past_the_window_is_skipped(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at, catch_up_seconds=600)
    await run_at(harness, clock, utc(2027, 1, 1, 9, 11))  # eleven minutes late, window ten
    assert await occurrences(harness) == []
    row = await schedule_row(harness, s["id"])
    assert row["missed"] == 1 and row["runs"] == 0 and row["next_run_at"] == utc(2027, 1, 2, 9)
    await run_at(harness, clock, utc(2027, 1, 2, 9, 9))  # the next one, within its window
    assert await occurrences(harness) == [utc(2027, 1, 2, 9)]


async def test_deleting_a_schedule_stops_it(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at)
    r = await harness.client.delete(f"/v1/schedules/{s['id']}", headers=harness.sender())
    assert r.status_code == 204
    await run_at(harness, clock, utc(2027, 1, 1, 9, 0, 1))
    assert await occurrences(harness) == []
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(jobs.c.status).where(jobs.c.kind == "schedule"))).scalar_one() == "done"


async def test_deleting_while_its_job_runs_writes_nothing(harness: Harness, inbox_type: str) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at)
    await make_due(harness)
    now = utcnow()
    async with harness.herald.db.write() as conn:
        lease_until = now + timedelta(minutes=1)
        (job,) = await job_store.claim_due_jobs(conn, owner="A", now=now, lease_until=lease_until, limit=1)
    r = await harness.client.delete(f"/v1/schedules/{s['id']}", headers=harness.sender())
    assert r.status_code == 204
    await schedule_engine.run_schedule_job(harness.herald, job, owner="A", now=utc(2027, 1, 1, 9, 0, 1))
    assert await occurrences(harness) == []
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(jobs.c.status).where(jobs.c.kind == "schedule"))).scalar_one() == "done"


async def test_an_occurrence_that_cannot_be_sent_is_recorded_and_the_schedule_goes_on(
    harness: Harness, inbox_type: str
) -> None:
    clock = Clock(utc(2027, 1, 1, 8, 30))
    s = await create(harness, "0 9 * * *", "UTC", clock.at)
    r = await harness.client.put(  # the template now needs a variable the schedule's data lacks
        "/v1/notification-types/recharge.succeeded/templates/inapp?locale=en",
        json={"title": "Recharge", "summary": "${amount} by ${who}"},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    await run_at(harness, clock, utc(2027, 1, 1, 9, 0, 1))
    assert await occurrences(harness) == []
    row = await schedule_row(harness, s["id"])
    assert "trigger.data.who" in row["last_error"] and row["missed"] == 1
    assert row["next_run_at"] == utc(2027, 1, 2, 9)
    r = await harness.client.put(
        "/v1/notification-types/recharge.succeeded/templates/inapp?locale=en",
        json={"title": "Recharge", "summary": "${amount}"},
        headers=harness.admin(),
    )
    await run_at(harness, clock, utc(2027, 1, 2, 9, 0, 1))
    row = await schedule_row(harness, s["id"])
    assert await occurrences(harness) == [utc(2027, 1, 2, 9)] and row["last_error"] is None and row["runs"] == 1


async def test_a_job_that_gave_up_in_an_outage_is_rearmed(harness: Harness, inbox_type: str) -> None:
    s = await create(harness, "0 9 * * *", "UTC", utc(2027, 1, 1, 8, 30))
    async with harness.herald.db.write() as conn:
        await conn.execute(update(jobs).where(jobs.c.kind == "schedule").values(status="failed", attempts=9))
    await schedule_engine.rearm_failed_jobs(harness.herald)
    async with harness.herald.db.read() as conn:
        job = (await conn.execute(select(jobs).where(jobs.c.kind == "schedule"))).mappings().one()
    assert job["id"] == s["job_id"] and job["status"] == "pending" and job["attempts"] == 0


async def test_an_audience_occurrence_is_expanded_by_fan_out(harness: Harness, inbox_type: str) -> None:
    now = utcnow()
    async with harness.herald.db.write() as conn:
        rows = [
            {"id": f"m{i}", "tags": ["vip"], "channels": {}, "data": {}, "created_at": now, "updated_at": now}
            for i in range(3)
        ]
        await conn.execute(insert(users), rows)
    req = TriggerRequest(type="recharge.succeeded", audience={"tags": ["vip"]}, data={"amount": "5"})
    clock = Clock(utc(2027, 1, 1, 8, 30))
    await schedule_engine.create_schedule(
        harness.herald, schedule_engine.NewSchedule("0 9 * * *", "UTC", req), now=clock.at
    )
    await run_at(harness, clock, utc(2027, 1, 1, 9, 0, 1))
    async with harness.herald.db.write() as conn:  # enqueued at the simulated time: due by the real one
        await conn.execute(update(jobs).where(jobs.c.kind == "fanout").values(run_at=utcnow()))
    await harness.drain()
    async with harness.herald.db.read() as conn:
        assert len((await conn.execute(select(inbox_items.c.user_id))).all()) == 3


async def test_an_idle_worker_fires_a_schedule_on_time(harness: Harness, inbox_type: str) -> None:
    """Within a second or two of its time (the poll interval is 1 s), not at the next housekeeping."""
    trigger = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}}
    body = {"cron": "* * * * *", "timezone": "UTC", "trigger": trigger}
    r = await harness.client.post("/v1/schedules", json=body, headers=harness.sender())
    assert r.status_code == 201, r.text
    worker = Worker(harness.herald)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.5)  # idle: the worker found nothing due and waits
        due = utcnow() + timedelta(seconds=1)
        async with harness.herald.db.write() as conn:  # due in a second (not on a minute: the test is short)
            await conn.execute(update(jobs).where(jobs.c.kind == "schedule").values(run_at=due))
            await conn.execute(update(schedule_store.schedules).values(next_run_at=due))
        while utcnow() < due + timedelta(seconds=10) and not await occurrences(harness):
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    sent = await occurrences(harness)
    assert sent == [due]
    async with harness.herald.db.read() as conn:
        created = (await conn.execute(select(notifications.c.created_at))).scalar_one()
    assert timedelta(0) <= created - due < timedelta(seconds=2.5)
