"""The worker's batch settle and claim-ahead, on both databases: outcomes recorded together fall
back to one by one when the batch fails, and a delivery claimed ahead that finds no slot is handed
back unattempted, never left claimed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels.base import Channel, OutboundMessage, SendResult
from herald.engine.worker import Worker
from herald.store import deliveries as delivery_store
from tests.conftest import Harness
from tests.engine.test_isolation import Scripted, rows


class Gated(Channel):
    """Holds every send until the gate opens, so that all outcomes reach the settler at once."""

    name = "gated"
    requires_template = False
    requires_account = False

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0
        self.sent: list[str] = []

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        self.waiting += 1
        await self.gate.wait()
        self.sent.append(message.recipient.id)
        return SendResult(provider_message_id=f"ok-{message.recipient.id}")


async def _run_gated(harness: Harness, channel: Gated, users: list[str]) -> None:
    harness.herald.channels["gated"] = channel
    await harness.put_type("gated.t", ["gated"], {})
    r = await harness.trigger({"type": "gated.t", "to": users, "data": {}})
    assert r.status_code == 202, r.text
    worker = Worker(harness.herald)
    run = asyncio.create_task(worker.run_once())
    for _ in range(500):
        if channel.waiting == len(users):
            break
        await asyncio.sleep(0.01)
    assert channel.waiting == len(users)
    channel.gate.set()  # every send ends in the same loop round: one batch for the settler
    await asyncio.wait_for(run, 10)


async def test_a_failed_batch_is_settled_one_by_one(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    real = delivery_store.settle_deliveries
    sizes: list[int] = []

    async def batch_breaks(conn: AsyncConnection, items: Sequence[delivery_store.Settlement], **kw: Any) -> list[bool]:
        sizes.append(len(items))
        if len(items) > 1:
            raise RuntimeError("the batch statement failed")
        return await real(conn, items, **kw)

    monkeypatch.setattr(delivery_store, "settle_deliveries", batch_breaks)
    users = [f"u{i}" for i in range(6)]
    channel = Gated()
    await _run_gated(harness, channel, users)
    assert sizes[0] == len(users), sizes  # tried together first, then each alone
    assert sizes[1:] == [1] * len(users)
    settled = await rows(harness)
    assert {(d["user_id"], d["status"], d["attempts"]) for d in settled} == {(u, "sent", 1) for u in users}
    assert sorted(channel.sent) == users  # each sent once


async def test_an_outcome_that_cannot_be_recorded_fails_alone(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = delivery_store.settle_deliveries

    async def one_row_breaks(
        conn: AsyncConnection, items: Sequence[delivery_store.Settlement], **kw: Any
    ) -> list[bool]:
        if any(i.delivery.user_id == "bad" for i in items):
            raise RuntimeError("this row cannot be written")
        return await real(conn, items, **kw)

    monkeypatch.setattr(delivery_store, "settle_deliveries", one_row_breaks)
    users = ["a", "bad", "b", "c"]
    await _run_gated(harness, Gated(), users)
    by_user = {d["user_id"]: d for d in await rows(harness)}
    assert {u: by_user[u]["status"] for u in users} == {"a": "sent", "bad": "sending", "b": "sent", "c": "sent"}
    # the one not recorded keeps its lease and comes back when it ends (at-least-once), nobody else
    assert by_user["bad"]["lease_until"] is not None and by_user["bad"]["attempts"] == 1


async def test_deliveries_claimed_ahead_without_a_slot_are_handed_back(harness: Harness) -> None:
    channel = Scripted()
    harness.herald.channels["scripted"] = channel
    harness.herald.settings.worker_concurrency = 2
    await harness.put_type("scripted.t", ["scripted"], {})
    r = await harness.trigger({"type": "scripted.t", "to": [f"hang{i}" for i in range(5)], "data": {}})
    assert r.status_code == 202, r.text
    worker = Worker(harness.herald)
    assert worker.ahead >= 1
    task = asyncio.create_task(worker.run())
    try:
        # both slots hang; what was claimed ahead waits READY_WAIT (0.25 s here), then goes back
        deadline = time.monotonic() + 3.0
        statuses: Counter[str] = Counter()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            statuses = Counter(d["status"] for d in await rows(harness))
            if statuses == {"sending": 2, "pending": 3} and worker._stalled:
                break
        assert statuses == {"sending": 2, "pending": 3}, statuses
        assert worker._stalled and not worker._ready
        pending = [d for d in await rows(harness) if d["status"] == "pending"]
        assert all(d["attempts"] == 0 and d["lease_owner"] is None for d in pending)
    finally:
        task.cancel()  # a hard stop: the hung sends are handed back too
        with contextlib.suppress(asyncio.CancelledError):
            await task
    left = await rows(harness)
    assert {(d["status"], d["attempts"], d["lease_owner"]) for d in left} == {("pending", 0, None)}
