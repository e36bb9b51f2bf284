"""PostgreSQL workers wake by LISTEN/NOTIFY: the first send after a trigger does not wait for the
poll interval, even when the trigger was accepted by another process (here: another Herald)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from herald.channels.base import Channel, OutboundMessage, SendResult
from herald.engine.service import Herald
from herald.engine.worker import Worker
from tests.conftest import Harness, make_settings


class Recording(Channel):
    name = "recording"
    requires_template = False
    requires_account = False

    def __init__(self) -> None:
        self.sent_at: list[float] = []

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        self.sent_at.append(time.monotonic())
        return SendResult()


async def _first_send_after_trigger(harness: Harness, *, pg_notify: bool) -> float | None:
    settings = make_settings(harness.herald.settings.database_url, worker_poll_seconds=30, pg_notify=pg_notify)
    other = Herald(settings)  # the worker process: it shares nothing with the API's Herald but the database
    channel = Recording()
    other.channels["recording"] = channel
    harness.herald.channels["recording"] = Recording()
    await harness.put_type("ping", ["recording"], {})
    worker = Worker(other)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.0)  # the worker found nothing and is waiting (LISTENing on PostgreSQL)
        started = time.monotonic()
        r = await harness.trigger({"type": "ping", "to": ["u1"], "data": {}})
        assert r.status_code == 202, r.text
        while time.monotonic() - started < 5.0:  # far below the 30 s poll
            if channel.sent_at:
                return channel.sent_at[0] - started
            await asyncio.sleep(0.01)
        return None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await other.close()


async def test_a_notify_wakes_a_worker_in_another_process(harness: Harness) -> None:
    if not harness.herald.db.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite runs one process with an in-process wake-up")
    latency = await _first_send_after_trigger(harness, pg_notify=True)
    assert latency is not None, "not woken: it would have waited for its 30 s poll"


async def test_without_notify_the_worker_waits_for_its_poll(harness: Harness) -> None:
    if not harness.herald.db.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    assert await _first_send_after_trigger(harness, pg_notify=False) is None  # 5 s later: still asleep
