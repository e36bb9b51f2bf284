"""The listener: every message to the handler, a bad message or a failing handler never stops it,
and a lost backplane is resubscribed with a gap notice so the streams replay."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.realtime.publisher import GAP
from herald.realtime.service import Realtime
from tests.conftest import REDIS_URL
from tests.realtime.support import TcpProxy


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail_on = fail_on
        self.arrived = asyncio.Event()

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.arrived.set()
        if message.get("k") == self.fail_on:
            raise RuntimeError("handler bug")

    async def wait_for(self, kind: str, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for m in self.messages:
                    if m.get("k") == kind and all(m.get(k) == v for k, v in fields.items()):
                        return m
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)


async def test_messages_reach_the_handler_of_every_process(backplane_url: str | None) -> None:
    first, second = Realtime(backplane_url), Realtime(backplane_url)
    if backplane_url is None:
        second = Realtime(None, backplane=first.backplane)  # in-process: one backplane, as in one process
    a, b = Recorder(), Recorder()
    try:
        await first.start(a)
        await second.start(b)
        assert first.subscribed and second.subscribed
        first.publish({"k": "counts", "u": "alice"})
        assert (await a.wait_for("counts"))["u"] == "alice"
        assert (await b.wait_for("counts"))["u"] == "alice"
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_failing_handler_is_logged_the_streams_replay_and_listening_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    realtime = Realtime(None)
    handler = Recorder(fail_on="items")
    stream = realtime.hub.open("alice")
    try:
        await realtime.start(handler)
        realtime.publish({"k": "items"})
        realtime.publish({"k": "counts"})
        await handler.wait_for("counts")
        assert stream.resync_since is not None
        assert "not delivered; open streams replay" in caplog.text
    finally:
        await realtime.aclose()


@pytest.mark.skipif(REDIS_URL is None, reason="needs HERALD_TEST_REDIS_URL (required under CI=true)")
async def test_a_redis_outage_is_survived_and_the_gap_replayed(caplog: pytest.LogCaptureFixture) -> None:
    assert REDIS_URL is not None
    caplog.set_level(logging.WARNING)
    proxy = TcpProxy(REDIS_URL)
    await proxy.start()
    realtime = Realtime(proxy.url)
    handler = Recorder()
    stream = realtime.hub.open("alice")
    try:
        await realtime.start(handler)
        assert realtime.subscribed
        await proxy.cut()
        cut_at = datetime.now(UTC)
        realtime.publish({"k": "counts", "u": "lost"})  # dropped, not raised
        for _ in range(200):
            if not realtime.subscribed:
                break
            await asyncio.sleep(0.05)
        assert not realtime.subscribed
        await proxy.restore()
        gap = await handler.wait_for(GAP, timeout=20)
        assert datetime.fromisoformat(gap["since"]) <= datetime.now(UTC)
        assert realtime.subscribed
        assert stream.resync_since is None  # the handler here is a recorder: it does not resync
        assert abs((datetime.fromisoformat(gap["since"]) - cut_at).total_seconds()) < 15
        realtime.publish({"k": "counts", "u": "after"})
        await handler.wait_for("counts", u="after")
        assert not any(m.get("u") == "lost" for m in handler.messages)  # lost, and replayed from the store instead
        assert "realtime backplane lost" in caplog.text or "unreachable" in caplog.text
    finally:
        await realtime.aclose()
        await proxy.cut()
