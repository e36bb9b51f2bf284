"""Rule 11, retention, on both databases: the worker's purge job deletes inbox items, deliveries
(with their attempts), notifications, finished jobs and idempotency records older than the
configured ages, in batches, and never a live delivery or anything younger than its age.

Rows are made through the API and the worker, then dated back (the only way to age a row in a test);
the purge then runs through the worker, as in production, and what is left is read back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy import func, select, update

from herald.config import Settings
from herald.core.retention import Purge
from herald.engine import retention
from herald.engine.worker import Worker
from herald.store import jobs as job_store
from herald.store import retention as retention_store
from herald.store.tables import (
    deliveries,
    delivery_attempts,
    idempotency_keys,
    inbox_items,
    inbox_responses,
    jobs,
    notifications,
)
from herald.store.types import utcnow
from tests.conftest import Harness, make_settings, running_harness

BATCH = 10
AGES = {"retention_inbox_days": 30, "retention_deliveries_days": 7, "retention_idempotency_hours": 48}


@pytest.fixture
async def h(database_url: str) -> AsyncIterator[Harness]:
    settings = make_settings(database_url, retention_batch_size=BATCH, **AGES)
    async with running_harness(settings) as harness:
        # in-app plus a channel with no account: each delivery ends skipped (no_account), with an attempt
        await harness.put_type("order.paid", ["inapp", "webhook"], {"inapp": {"title": "订单 ${n}"}})
        yield harness


async def trigger(h: Harness, user: str, n: int, **extra: Any) -> str:
    r = await h.trigger({"type": "order.paid", "to": [user], "data": {"n": str(n)}, **extra})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def age(h: Harness, table: Any, where: Any, **days_ago: float) -> None:
    """Date rows back: ``created_at=31`` sets created_at to 31 days ago."""
    now = utcnow()
    values = {column: now - timedelta(days=d) for column, d in days_ago.items()}
    async with h.herald.db.write() as conn:
        await conn.execute(update(table).where(where).values(**values))


async def count(h: Harness, table: Any, *where: Any) -> int:
    async with h.herald.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def run_the_purge_job(h: Harness) -> None:
    """Through the worker: its housekeeping makes the job (first due a minute later), which is
    moved to now; then the worker runs it until nothing is due."""
    await h.drain()
    async with h.herald.db.write() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == retention.JOB_ID).values(run_at=utcnow()))
    await h.drain()


async def purged_rows(h: Harness, table: str) -> float:
    text = (await h.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "herald_retention_purged_rows_total" and sample.labels == {"table": table}:
                return float(sample.value)
    return 0.0


async def test_old_rows_are_purged_and_live_and_young_rows_kept(h: Harness) -> None:
    old = [await trigger(h, "alice", i) for i in range(25)]
    young = [await trigger(h, "carol", i) for i in range(3)]
    r = await h.trigger({"type": "order.paid", "to": ["dave"], "data": {"n": "1"}}, **{"Idempotency-Key": "old"})
    r2 = await h.trigger({"type": "order.paid", "to": ["dave"], "data": {"n": "2"}}, **{"Idempotency-Key": "young"})
    assert r.status_code == r2.status_code == 202
    await h.drain()  # every delivery ends: skipped, no account
    live = await trigger(h, "bob", 1)  # its delivery waits a day (as after a backoff): pending throughout
    async with h.herald.db.write() as conn:
        waiting = update(deliveries).where(deliveries.c.user_id == "bob")
        await conn.execute(waiting.values(next_attempt_at=utcnow() + timedelta(days=1)))
    old_delivery_ids = [
        d for (d,) in await fetch(h, select(deliveries.c.id).where(deliveries.c.notification_id.in_(old)))
    ]
    assert len(old_delivery_ids) == 25
    assert await count(h, delivery_attempts, delivery_attempts.c.delivery_id.in_(old_delivery_ids)) == 25

    # alice's and bob's rows are old; one of alice's items is not quite (29 days: kept)
    await age(h, deliveries, deliveries.c.user_id.in_(["alice", "bob"]), created_at=8, updated_at=8)
    await age(h, notifications, notifications.c.id.in_([*old, live]), created_at=8, updated_at=8)
    await age(h, inbox_items, inbox_items.c.user_id.in_(["alice", "bob"]), created_at=31)
    kept_item = (await fetch(h, select(inbox_items.c.id).where(inbox_items.c.user_id == "alice")))[0][0]
    await age(h, inbox_items, inbox_items.c.id == kept_item, created_at=29)
    async with h.herald.db.write() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "old")
            .values(created_at=utcnow() - timedelta(hours=49), expires_at=utcnow() - timedelta(hours=25))
        )
        finished = await job_store.enqueue_job(conn, "fanout", {}, run_at=utcnow(), now=utcnow())
        await conn.execute(update(jobs).where(jobs.c.id == finished).values(status="done"))
    await age(h, jobs, jobs.c.id == finished, updated_at=8, created_at=8)
    purged_before = await purged_rows(h, "deliveries")

    await run_the_purge_job(h)

    # deliveries that ended long ago went, with their attempts; the live one and the young ones stay
    assert await count(h, deliveries, deliveries.c.id.in_(old_delivery_ids)) == 0
    assert await count(h, delivery_attempts, delivery_attempts.c.delivery_id.in_(old_delivery_ids)) == 0
    assert await count(h, deliveries, deliveries.c.user_id == "carol") == 3
    assert await count(h, delivery_attempts) == 3 + 2  # carol's and dave's
    (bob,) = await fetch(h, select(deliveries.c.status).where(deliveries.c.user_id == "bob"))
    assert bob[0] == "pending"
    # notifications: gone once no delivery refers to them; the live and the young stay
    for nid in old[:3]:
        assert (await h.client.get(f"/v1/notifications/{nid}", headers=h.reader())).status_code == 404
    for nid in (live, *young):
        assert (await h.client.get(f"/v1/notifications/{nid}", headers=h.reader())).status_code == 200
    assert await count(h, notifications, notifications.c.id.in_(old)) == 0
    # the inbox: items older than 30 days went, read or not; the 29-day one and the young stay
    alice = (await h.client.get("/v1/me/inbox", headers=h.user("alice"))).json()["items"]
    assert [i["id"] for i in alice] == [kept_item]
    assert (await h.client.get("/v1/me/inbox/counts", headers=h.user("alice"))).json()["total"] == 1
    assert (await h.client.get("/v1/me/inbox", headers=h.user("bob"))).json()["items"] == []
    assert len((await h.client.get("/v1/me/inbox", headers=h.user("carol"))).json()["items"]) == 3
    # finished jobs and idempotency records past their age went; the young key still replays
    assert await count(h, jobs, jobs.c.id == finished) == 0
    assert await count(h, idempotency_keys, idempotency_keys.c.key == "old") == 0
    again = await h.trigger({"type": "order.paid", "to": ["dave"], "data": {"n": "2"}}, **{"Idempotency-Key": "young"})
    assert again.json()["id"] == r2.json()["id"]
    # the job waits for its next round, and the purge is counted in /metrics
    (job,) = await fetch(h, select(jobs.c.status, jobs.c.run_at, jobs.c.attempts).where(jobs.c.kind == "retention"))
    assert job[0] == "pending" and job[1] > utcnow() + timedelta(minutes=5) and job[2] == 0
    assert await purged_rows(h, "deliveries") == purged_before + 25


async def fetch(h: Harness, query: Any) -> list[Any]:
    async with h.herald.db.read() as conn:
        return list(await conn.execute(query))


async def test_each_batch_deletes_at_most_its_size(h: Harness) -> None:
    for i in range(25):
        await trigger(h, "alice", i)
    await age(h, inbox_items, inbox_items.c.user_id == "alice", created_at=31)
    before = utcnow() - timedelta(days=30)
    sizes = []
    while True:
        async with h.herald.db.write() as conn:
            batch = await retention_store.purge_inbox_items(conn, before=before, limit=BATCH)
        sizes.append(batch.deleted)
        if not batch.more:
            break
    assert sizes == [10, 10, 5]


async def test_a_run_out_of_budget_stops_after_a_batch_and_says_more_is_left(h: Harness) -> None:
    for i in range(25):
        await trigger(h, "alice", i)
    await age(h, inbox_items, inbox_items.c.user_id == "alice", created_at=31)
    purged, more = await retention.purge(h.herald, budget_seconds=0)
    assert purged == {Purge.INBOX: BATCH} and more
    purged, more = await retention.purge(h.herald, budget_seconds=60)
    assert purged == {Purge.INBOX: 15} and not more


async def test_two_purges_at_once_delete_each_row_once(h: Harness) -> None:
    for i in range(40):
        await trigger(h, "alice", i)
    await h.drain()
    await age(h, inbox_items, inbox_items.c.user_id == "alice", created_at=31)
    await age(h, deliveries, deliveries.c.user_id == "alice", updated_at=8)
    await age(h, notifications, notifications.c.id.is_not(None), created_at=8)
    results = await asyncio.gather(*(retention.purge(h.herald, budget_seconds=60) for _ in range(2)))
    for kind in (Purge.INBOX, Purge.DELIVERIES, Purge.NOTIFICATIONS):
        assert sum(purged.get(kind, 0) for purged, _ in results) == 40, kind
    assert await count(h, inbox_items) == await count(h, deliveries) == await count(h, notifications) == 0


async def test_one_job_however_many_workers_and_a_failed_one_comes_back(h: Harness) -> None:
    for _ in range(3):
        await Worker(h.herald).run_once()  # each new worker's housekeeping schedules the job
    assert await count(h, jobs, jobs.c.kind == "retention") == 1
    async with h.herald.db.write() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == retention.JOB_ID).values(status="failed", attempts=9))
    await Worker(h.herald).run_once()
    (job,) = await fetch(h, select(jobs.c.status, jobs.c.attempts).where(jobs.c.id == retention.JOB_ID))
    assert tuple(job) == ("pending", 0)


async def test_ages_of_zero_keep_everything(database_url: str) -> None:
    settings = make_settings(
        database_url, retention_inbox_days=0, retention_deliveries_days=0, retention_idempotency_hours=0
    )
    async with running_harness(settings) as h:
        await h.put_type("order.paid", ["inapp", "webhook"], {"inapp": {"title": "t"}})
        await trigger(h, "alice", 1)
        await h.drain()
        await age(h, inbox_items, inbox_items.c.user_id == "alice", created_at=10_000)
        await age(h, deliveries, deliveries.c.user_id == "alice", updated_at=10_000)
        await h.drain()
        assert await count(h, jobs) == 0  # no purge job at all
        assert await retention.purge(h.herald, budget_seconds=60) == ({}, False)
        assert await count(h, inbox_items) == await count(h, deliveries) == 1


@pytest.mark.parametrize("hours", [1, 23])
def test_idempotency_retention_is_zero_or_at_least_the_replay_window(hours: int) -> None:
    with pytest.raises(ValidationError, match="retention_idempotency_hours"):
        Settings(retention_idempotency_hours=hours)
    assert Settings(retention_idempotency_hours=0).retention_idempotency_hours == 0
    assert Settings(retention_idempotency_hours=24).retention_idempotency_hours == 24


async def test_the_answers_to_a_purged_notification_go_with_it(h: Harness) -> None:
    actions = [{"id": "confirm", "label": "确认"}]
    old, young = [await trigger(h, user, 1, actions=actions) for user in ("erin", "fay")]
    for user in ("erin", "fay"):
        (item,) = (await h.client.get("/v1/me/inbox", headers=h.user(user))).json()["items"]
        r = await h.client.post(f"/v1/me/inbox/{item['id']}/actions/confirm", json={}, headers=h.user(user))
        assert r.status_code in (200, 201), r.text
    await h.drain()
    assert await count(h, inbox_responses) == 2
    await age(h, deliveries, deliveries.c.notification_id == old, updated_at=8)
    await age(h, notifications, notifications.c.id == old, created_at=8)
    purged, _ = await retention.purge(h.herald, budget_seconds=60)
    assert purged[Purge.NOTIFICATIONS] == 1
    assert (await h.client.get(f"/v1/notifications/{old}", headers=h.reader())).status_code == 404
    assert await count(h, inbox_responses, inbox_responses.c.notification_id == old) == 0
    r = await h.client.get(f"/v1/notifications/{young}", headers=h.reader())
    assert [a["user_id"] for a in r.json()["responses"]] == ["fay"]


async def test_notifications_kept_at_the_head_are_passed_over(h: Harness) -> None:
    """More old notifications than a batch that must stay (a delivery of theirs still waits) come
    first in the index: the purge walks past them to the purgeable ones behind, and stops."""
    kept = [await trigger(h, "bob", i) for i in range(BATCH + 2)]
    async with h.herald.db.write() as conn:  # bob's deliveries wait a day: live throughout
        waiting = update(deliveries).where(deliveries.c.user_id == "bob")
        await conn.execute(waiting.values(next_attempt_at=utcnow() + timedelta(days=1)))
    gone = [await trigger(h, "alice", i) for i in range(25)]
    await h.drain()
    await age(h, notifications, notifications.c.id.in_(kept), created_at=10)
    await age(h, notifications, notifications.c.id.in_(gone), created_at=9)
    await age(h, deliveries, deliveries.c.user_id == "alice", updated_at=8)
    purged, more = await asyncio.wait_for(retention.purge(h.herald, budget_seconds=60), 30)
    assert purged[Purge.NOTIFICATIONS] == 25 and not more
    assert await count(h, notifications, notifications.c.id.in_(kept)) == BATCH + 2
    assert await count(h, notifications, notifications.c.id.in_(gone)) == 0
