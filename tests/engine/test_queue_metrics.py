"""Queue gauges: due pending deliveries per channel and priority, and the age of the oldest one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from herald.engine.queue_metrics import QueueGauges
from herald.store.db import Database
from herald.store.deliveries import insert_deliveries
from herald.store.queue_stats import due_delivery_counts
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness

_n = 0


def delivery(channel: str, priority: int, status: str, due_in: float | None) -> dict[str, Any]:
    global _n
    _n += 1
    now = utcnow()
    return {
        "id": f"dlv_q{_n:06d}",
        "notification_id": "ntf_q",
        "user_id": f"u{_n}",
        "channel": channel,
        "status": status,
        "priority": priority,
        "attempts": 0,
        "next_attempt_at": None if due_in is None else now + timedelta(seconds=due_in),
        "created_at": now,
        "updated_at": now,
    }


def due(channel: str, priority: str) -> float | None:
    return REGISTRY.get_sample_value("herald_deliveries_due", {"channel": channel, "priority": priority})


def oldest_age() -> float | None:
    return REGISTRY.get_sample_value("herald_oldest_due_delivery_age_seconds")


async def test_due_counts_and_oldest_age(harness: Harness) -> None:
    rows = [
        delivery("webhook", 0, "pending", -30),  # due 30 s ago: the oldest
        delivery("webhook", 0, "pending", -1),
        delivery("webhook", 1, "pending", -5),
        delivery("email", 2, "pending", 0),
        delivery("email", 2, "pending", 60),  # not due yet
        delivery("email", 1, "sending", -100),  # leased: in flight, not waiting
        delivery("email", 1, "sent", None),
        delivery("sms", 1, "failed", None),
    ]
    async with harness.herald.db.write() as conn:
        await insert_deliveries(conn, rows)
    async with harness.herald.db.read() as conn:
        counts = await due_delivery_counts(conn, utcnow())
    assert sorted((c.channel, c.priority, c.count) for c in counts) == [
        ("email", 2, 1),
        ("webhook", 0, 2),
        ("webhook", 1, 1),
    ]

    gauges = QueueGauges(max_age=0)
    await gauges.refresh(harness.herald.db)
    assert due("webhook", "high") == 2
    assert due("webhook", "normal") == 1
    assert due("email", "low") == 1
    assert due("email", "normal") in (None, 0)  # the leased row is not counted
    age = oldest_age()
    assert age is not None and 29 <= age < 60

    # The API's /metrics refreshes them too.
    r = await harness.client.get("/metrics")
    assert r.status_code == 200
    assert 'herald_deliveries_due{channel="webhook",priority="high"} 2.0' in r.text
    assert "herald_oldest_due_delivery_age_seconds " in r.text

    # A lane that drains reads 0, and with nothing due the oldest age is 0.
    async with harness.herald.db.write() as conn:
        await conn.execute(deliveries.delete())
    await gauges.refresh(harness.herald.db)
    assert due("webhook", "high") == 0
    assert due("email", "low") == 0
    assert oldest_age() == 0


async def test_database_outage_keeps_the_last_values(harness: Harness, tmp_path: Path) -> None:
    async with harness.herald.db.write() as conn:
        await insert_deliveries(conn, [delivery("webhook", 1, "pending", -2)])
    gauges = QueueGauges(max_age=0)
    await gauges.refresh(harness.herald.db)
    assert due("webhook", "normal") == 1

    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/none.db")
    try:
        await gauges.refresh(broken)  # no exception
    finally:
        await broken.dispose()
    assert due("webhook", "normal") == 1


async def test_refresh_is_cached(harness: Harness) -> None:
    gauges = QueueGauges(max_age=60)
    await gauges.refresh(harness.herald.db)
    before = due("webhook", "low")
    async with harness.herald.db.write() as conn:
        await insert_deliveries(conn, [delivery("webhook", 2, "pending", -1)])
    await gauges.refresh(harness.herald.db)  # within max_age: no query
    assert due("webhook", "low") == before
