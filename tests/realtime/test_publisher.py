"""Publishing never blocks or fails the publisher; what is lost is announced once the backplane is back."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from herald.realtime.backplane import MemoryBackplane, Subscription
from herald.realtime.publisher import GAP, Publisher


class FlakyBackplane(MemoryBackplane):
    """Fails while ``down``; a publish takes ``delay`` seconds (a slow network)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.delay = 0.0
        self.attempts = 0

    async def publish(self, message: str) -> None:
        self.attempts += 1
        await asyncio.sleep(self.delay)
        if self.down:
            raise ConnectionError("backplane down")
        await super().publish(message)


async def received(subscription: Subscription, count: int) -> list[dict[str, object]]:
    return [json.loads(await asyncio.wait_for(subscription.next_message(), 5)) for _ in range(count)]


async def test_publish_returns_at_once_even_when_the_backplane_is_slow() -> None:
    backplane = FlakyBackplane()
    backplane.delay = 0.2
    publisher = Publisher(backplane)
    subscription = await backplane.subscribe()
    started = time.monotonic()
    for n in range(5):
        publisher.publish({"k": "items", "n": n})
    assert time.monotonic() - started < 0.05
    assert [m["n"] for m in await received(subscription, 5)] == [0, 1, 2, 3, 4]  # in order
    await publisher.aclose()


async def test_a_failed_publish_is_dropped_and_a_gap_notice_follows_recovery() -> None:
    backplane = FlakyBackplane()
    publisher = Publisher(backplane)
    subscription = await backplane.subscribe()
    publisher.publish({"k": "counts", "u": "a"})
    assert (await received(subscription, 1))[0]["u"] == "a"

    backplane.down = True
    before = datetime.now().astimezone()
    publisher.publish({"k": "counts", "u": "lost-1"})
    publisher.publish({"k": "counts", "u": "lost-2"})
    for _ in range(100):
        if not publisher.healthy:
            break
        await asyncio.sleep(0.01)
    assert not publisher.healthy and publisher.dropped >= 1

    backplane.down = False  # the gap notice goes out first, without waiting for a new message
    gap = (await received(subscription, 1))[0]
    assert gap["k"] == GAP and datetime.fromisoformat(str(gap["since"])) >= before
    publisher.publish({"k": "counts", "u": "b"})
    assert (await received(subscription, 1))[0]["u"] == "b"
    assert publisher.healthy and publisher.dropped == 2
    await publisher.aclose()


async def test_a_full_queue_drops_instead_of_growing() -> None:
    backplane = FlakyBackplane()
    backplane.delay = 10  # nothing leaves
    publisher = Publisher(backplane, max_pending=3)
    for n in range(10):
        publisher.publish({"k": "items", "n": n})
    assert publisher.dropped >= 6 and not publisher.healthy
    await publisher.aclose(within=0.1)


async def test_close_hands_over_what_is_queued() -> None:
    backplane = FlakyBackplane()
    subscription = await backplane.subscribe()
    publisher = Publisher(backplane)
    for n in range(3):
        publisher.publish({"k": "items", "n": n})
    await publisher.aclose()
    assert [m["n"] for m in await received(subscription, 3)] == [0, 1, 2]


def test_publishing_outside_an_event_loop_is_logged_not_raised() -> None:
    Publisher(MemoryBackplane()).publish({"k": "items"})
