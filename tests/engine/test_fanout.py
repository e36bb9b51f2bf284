"""Large and scheduled notifications are expanded by the fan-out job, in chunks, exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from herald.engine import fanout
from herald.engine.worker import Worker
from herald.store import jobs as job_store
from herald.store.tables import deliveries, inbox_items, jobs, users
from herald.store.types import utcnow
from tests.conftest import Harness


async def count(h: Harness, table, **where) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for k, v in where.items():
        query = query.where(table.c[k] == v)
    async with h.herald.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest.fixture
def small_chunks(harness: Harness) -> Harness:
    harness.herald.settings.inline_fanout_limit = 10
    harness.herald.settings.fanout_chunk_size = 100
    return harness


async def test_list_over_the_inline_limit_is_expanded_by_a_job(small_chunks: Harness, inbox_type: str) -> None:
    h = small_chunks
    ids = [f"user-{i:04d}" for i in range(350)]
    r = await h.trigger({"type": inbox_type, "to": ids, "data": {"amount": "5"}})
    assert r.status_code == 202 and r.json()["recipients"] == 350
    nid = r.json()["id"]
    assert await count(h, inbox_items) == 0  # accepted: the job holds the work
    await h.drain()
    assert await count(h, inbox_items, notification_id=nid) == 350
    assert await count(h, users) == 350  # unknown ids became bare recipients
    status = (await h.client.get(f"/v1/notifications/{nid}", headers=h.reader())).json()
    assert status["status"] == "processed" and status["recipients"] == 350
    inbox = (await h.client.get("/v1/me/inbox", headers=h.user("user-0349"))).json()
    assert inbox["items"][0]["summary"] == "充值 5 元"


async def test_audience_all_and_tags(small_chunks: Harness, inbox_type: str) -> None:
    h = small_chunks
    async with h.herald.db.write() as conn:
        now = utcnow()
        await conn.execute(
            users.insert(),
            [
                {
                    "id": f"m{i:03d}",
                    "tags": ["vip"] if i % 3 == 0 else [],
                    "channels": {},
                    "data": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(250)
            ],
        )
    r = await h.trigger({"type": inbox_type, "audience": {"tags": ["vip"]}, "data": {"amount": "1"}})
    assert r.status_code == 202 and r.json()["recipients"] is None
    await h.drain()
    nid = r.json()["id"]
    assert await count(h, inbox_items, notification_id=nid) == 84
    status = (await h.client.get(f"/v1/notifications/{nid}", headers=h.reader())).json()
    assert status["recipients"] == 84

    r = await h.trigger({"type": inbox_type, "audience": {"all": True}, "data": {"amount": "1"}})
    await h.drain()
    assert await count(h, inbox_items, notification_id=r.json()["id"]) == 250


async def test_a_chunk_is_written_once_when_the_lease_is_lost(small_chunks: Harness, inbox_type: str) -> None:
    """Worker A's lease expires mid fan-out and B takes the job: A's next chunk is rolled back."""
    h = small_chunks
    r = await h.trigger({"type": inbox_type, "to": [f"x{i}" for i in range(300)], "data": {"amount": "1"}})
    nid = r.json()["id"]
    now = utcnow()
    async with h.herald.db.write() as conn:
        (job,) = await job_store.claim_due_jobs(
            conn, owner="A", now=now, lease_until=now + timedelta(seconds=60), limit=1
        )
    async with h.herald.db.write() as conn:  # B steals it after A's lease "expired"
        await conn.execute(update(jobs).values(lease_owner="B"))
    with pytest.raises(fanout.LostLease):
        await fanout.run_fanout_job(h.herald, job, owner="A")
    assert await count(h, inbox_items, notification_id=nid) == 0
    async with h.herald.db.write() as conn:  # B's lease expires too; a live worker finishes
        await conn.execute(update(jobs).values(run_at=utcnow() - timedelta(seconds=1)))
    await h.drain()
    assert await count(h, inbox_items, notification_id=nid) == 300


async def test_scheduled_send_waits_for_send_at(harness: Harness, inbox_type: str) -> None:
    send_at = utcnow() + timedelta(hours=1)
    r = await harness.trigger(
        {"type": inbox_type, "to": ["alice"], "data": {"amount": "3"}, "send_at": send_at.isoformat()}
    )
    nid = r.json()["id"]
    await harness.drain()
    assert await count(harness, inbox_items) == 0
    status = (await harness.client.get(f"/v1/notifications/{nid}", headers=harness.reader())).json()
    assert status["status"] == "scheduled"
    async with harness.herald.db.write() as conn:
        await conn.execute(update(jobs).values(run_at=utcnow()))
    await harness.drain()
    assert await count(harness, inbox_items, notification_id=nid) == 1


async def test_cancel_before_send_at_writes_nothing(harness: Harness, inbox_type: str) -> None:
    send_at = utcnow() + timedelta(hours=1)
    r = await harness.trigger(
        {"type": inbox_type, "to": ["alice"], "data": {"amount": "3"}, "send_at": send_at.isoformat()}
    )
    nid = r.json()["id"]
    r = await harness.client.delete(f"/v1/notifications/{nid}", headers=harness.sender())
    assert r.json()["status"] == "cancelled"
    async with harness.herald.db.write() as conn:
        await conn.execute(update(jobs).values(run_at=utcnow()))
    await harness.drain()
    assert await count(harness, inbox_items) == 0
    assert await count(harness, deliveries) == 0
    assert await count(harness, jobs, status="done") == 1


async def test_worker_run_once_is_false_when_idle(harness: Harness) -> None:
    assert not await Worker(harness.herald).run_once()


async def test_a_long_fan_out_yields_between_chunks(small_chunks: Harness, inbox_type: str) -> None:
    """Out of time budget, the job is handed back due now, so deliveries can run in between."""
    h = small_chunks
    r = await h.trigger({"type": inbox_type, "to": [f"y{i}" for i in range(350)], "data": {"amount": "1"}})
    now = utcnow()
    async with h.herald.db.write() as conn:
        (job,) = await job_store.claim_due_jobs(
            conn, owner="W", now=now, lease_until=now + timedelta(seconds=60), limit=1
        )
    await fanout.run_fanout_job(h.herald, job, owner="W", budget_seconds=0)
    assert await count(h, inbox_items, notification_id=r.json()["id"]) == 100
    async with h.herald.db.read() as conn:
        row = (await conn.execute(select(jobs))).mappings().one()
    assert row["status"] == "pending" and row["lease_owner"] is None and row["run_at"] <= utcnow()
    assert row["payload"]["offset"] == 100
    await h.drain()
    assert await count(h, inbox_items, notification_id=r.json()["id"]) == 350
