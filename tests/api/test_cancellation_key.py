"""``cancellation_key`` at trigger time, and ``POST /v1/notifications/cancel`` with it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from herald.engine import fanout
from herald.engine.worker import Worker
from herald.store import jobs as job_store
from herald.store.tables import deliveries, inbox_items, jobs, notifications
from herald.store.types import utcnow
from tests.api.test_accounts import fields_named
from tests.api.test_types import put_type
from tests.conftest import Harness

LATER = (utcnow() + timedelta(hours=1)).isoformat()


@pytest.fixture
async def hook_type(harness: Harness, routing_accounts: None) -> str:
    """A webhook type (its deliveries wait as rows until a worker runs) beside the in-app one."""
    r = await put_type(harness, "order.shipped", ["webhook"], accounts={"webhook": ["hook"]})
    assert r.status_code == 201, r.text
    return "order.shipped"


async def cancel(h: Harness, key: Any, **headers: str) -> httpx.Response:
    return await h.client.post(
        "/v1/notifications/cancel", json={"cancellation_key": key}, headers={**h.sender(), **headers}
    )


async def statuses(h: Harness, nid: str) -> tuple[str, list[str]]:
    r = await h.client.get(f"/v1/notifications/{nid}", headers=h.reader())
    assert r.status_code == 200, r.text
    body = r.json()
    return body["status"], sorted(d["status"] for d in body["deliveries"] if d["channel"] != "inapp")


async def items_of(h: Harness, nid: str) -> int:
    async with h.herald.db.read() as conn:
        query = select(func.count()).select_from(inbox_items).where(inbox_items.c.notification_id == nid)
        return int((await conn.execute(query)).scalar_one())


async def all_jobs_due(h: Harness) -> None:
    async with h.herald.db.write() as conn:
        await conn.execute(update(jobs).values(run_at=utcnow()))


async def test_scheduled_notifications_with_the_key_never_go_out(harness: Harness, inbox_type: str) -> None:
    body = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "send_at": LATER}
    a1 = (await harness.trigger({**body, "cancellation_key": "order-9"})).json()["id"]
    a2 = (await harness.trigger({**body, "cancellation_key": "order-9", "to": ["u2", "u3"]})).json()["id"]
    b = (await harness.trigger({**body, "cancellation_key": "order-10"})).json()["id"]
    plain = (await harness.trigger(body)).json()["id"]
    r = await cancel(harness, "order-9")
    assert r.status_code == 200 and r.json() == {"cancelled": 2, "cancelled_deliveries": 0}
    await all_jobs_due(harness)  # send_at reached
    await harness.drain()
    assert (await statuses(harness, a1))[0] == (await statuses(harness, a2))[0] == "cancelled"
    assert await items_of(harness, a1) == await items_of(harness, a2) == 0
    assert await items_of(harness, b) == 1 and await items_of(harness, plain) == 1  # other keys untouched
    r = await harness.client.get(f"/v1/notifications/{a1}", headers=harness.reader())
    assert r.json()["cancellation_key"] == "order-9"


async def test_pending_deliveries_with_the_key_end_cancelled(harness: Harness, hook_type: str) -> None:
    mine = (await harness.trigger({"type": hook_type, "to": ["u1", "u2"], "cancellation_key": "k"})).json()["id"]
    other = (await harness.trigger({"type": hook_type, "to": ["u1"], "cancellation_key": "k2"})).json()["id"]
    r = await cancel(harness, "k")
    assert r.json() == {"cancelled": 1, "cancelled_deliveries": 2}
    assert await statuses(harness, mine) == ("processed", ["cancelled", "cancelled"])
    r = await harness.client.get(f"/v1/notifications/{mine}", headers=harness.reader())
    assert {d["reason"] for d in r.json()["deliveries"]} == {"cancelled"}
    assert await statuses(harness, other) == ("processed", ["pending"])
    await harness.drain()  # the cancelled ones are never claimed
    assert await statuses(harness, mine) == ("processed", ["cancelled", "cancelled"])


async def test_cancelling_again_finds_nothing_left(harness: Harness, hook_type: str) -> None:
    await harness.trigger({"type": hook_type, "to": ["u1"], "cancellation_key": "k"})
    assert (await cancel(harness, "k")).json()["cancelled"] == 1
    r = await cancel(harness, "k")
    assert r.status_code == 200 and r.json() == {"cancelled": 0, "cancelled_deliveries": 0}
    r = await cancel(harness, "never-used")
    assert r.status_code == 200 and r.json() == {"cancelled": 0, "cancelled_deliveries": 0}


async def test_the_idempotency_key_replays_the_first_answer(harness: Harness, hook_type: str) -> None:
    await harness.trigger({"type": hook_type, "to": ["u1"], "cancellation_key": "k"})
    first = await cancel(harness, "k", **{"Idempotency-Key": "c-1"})
    again = await cancel(harness, "k", **{"Idempotency-Key": "c-1"})
    assert first.json() == again.json() == {"cancelled": 1, "cancelled_deliveries": 1}
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await cancel(harness, "other", **{"Idempotency-Key": "c-1"})).status_code == 409


async def test_a_fan_out_under_way_writes_nothing_after_the_cancel(harness: Harness, inbox_type: str) -> None:
    harness.herald.settings.inline_fanout_limit = 10
    harness.herald.settings.fanout_chunk_size = 100
    r = await harness.trigger(
        {"type": inbox_type, "to": [f"u{i}" for i in range(350)], "data": {"amount": "1"}, "cancellation_key": "blast"}
    )
    nid = r.json()["id"]
    now = utcnow()
    async with harness.herald.db.write() as conn:
        lease_until = now + timedelta(minutes=1)
        (job,) = await job_store.claim_due_jobs(conn, owner="W", now=now, lease_until=lease_until, limit=1)
    await fanout.run_fanout_job(harness.herald, job, owner="W", budget_seconds=0)  # one chunk, then handed back
    assert await items_of(harness, nid) == 100
    assert (await cancel(harness, "blast")).json()["cancelled"] == 1
    await harness.drain()
    assert await items_of(harness, nid) == 100  # the rest never written
    assert (await statuses(harness, nid))[0] == "cancelled"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "cancellation_key"),
        ({"cancellation_key": ""}, "cancellation_key"),
        ({"cancellation_key": "k" * 201}, "cancellation_key"),
        ({"cancellation_key": 7}, "cancellation_key"),
        ({"cancellation_key": "a\x00b"}, "cancellation_key"),
        ({"cancellation_key": "k", "extra": 1}, "extra"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(harness: Harness, body: dict[str, Any], field: str) -> None:
    r = await harness.client.post("/v1/notifications/cancel", json=body, headers=harness.sender())
    assert fields_named(r) == [field]


async def test_a_trigger_with_a_bad_key_is_refused(harness: Harness, inbox_type: str) -> None:
    body = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "cancellation_key": "k" * 201}
    r = await harness.trigger(body)
    assert fields_named(r) == ["cancellation_key"]


async def test_the_batch_endpoint_takes_the_key(harness: Harness, hook_type: str) -> None:
    entries = [{"type": hook_type, "to": [f"u{i}"], "cancellation_key": "batch-1"} for i in range(3)]
    entries.append({"type": hook_type, "to": ["u9"], "cancellation_key": "k" * 201})
    r = await harness.client.post("/v1/notifications/batch", json={"notifications": entries}, headers=harness.sender())
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 202, 202, 422]
    assert results[3]["error"]["errors"][0]["field"] == "notifications.3.cancellation_key"
    assert (await cancel(harness, "batch-1")).json() == {"cancelled": 3, "cancelled_deliveries": 3}


async def test_scopes(harness: Harness) -> None:
    body = {"cancellation_key": "k"}
    r = await harness.client.post("/v1/notifications/cancel", json=body, headers=harness.reader())
    assert r.status_code == 403
    r = await harness.client.post("/v1/notifications/cancel", json=body, headers=harness.user("u1"))
    assert r.status_code == 401


async def test_the_key_is_indexed_and_stored_as_given(harness: Harness, hook_type: str) -> None:
    key = "订单-9/取消 ✓"
    await harness.trigger({"type": hook_type, "to": ["u1"], "cancellation_key": key})
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(notifications.c.cancellation_key))).scalar_one() == key
    assert (await cancel(harness, key)).json()["cancelled"] == 1
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(deliveries.c.status))).scalar_one() == "cancelled"


async def test_nothing_is_written_after_the_cancel_answers_while_a_worker_fans_out(
    harness: Harness, inbox_type: str
) -> None:
    """The cancel and a fan-out chunk order on the notification's row: once the cancel has answered,
    no chunk commits more (on PostgreSQL a chunk that read the status before the cancel would
    otherwise still commit after it)."""
    harness.herald.settings.inline_fanout_limit = 10
    harness.herald.settings.fanout_chunk_size = 100
    r = await harness.trigger(
        {"type": inbox_type, "to": [f"u{i}" for i in range(5000)], "data": {"amount": "1"}, "cancellation_key": "b"}
    )
    nid = r.json()["id"]
    worker = Worker(harness.herald)
    task = asyncio.create_task(worker.run())
    try:
        while await items_of(harness, nid) < 300:
            await asyncio.sleep(0.005)
        assert (await cancel(harness, "b")).json()["cancelled"] == 1
        written = await items_of(harness, nid)
        await asyncio.sleep(0.5)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
    assert await items_of(harness, nid) == written < 5000
