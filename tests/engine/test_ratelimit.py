"""Per-account send budgets: the same behaviour in-process and shared through Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from herald.channels.base import Channel, ChannelSettings, OutboundMessage, RateLimit, SendResult
from herald.engine.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from herald.store.tables import deliveries
from tests.conftest import REDIS_URL, SHARED_BACKENDS, Harness


@pytest.fixture(params=SHARED_BACKENDS)
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], RateLimiter]]:
    """A factory: on Redis each call is another 'worker' sharing the same budget."""
    made: list[RateLimiter] = []
    prefix = f"herald-test:{secrets.token_hex(4)}:"

    def make() -> RateLimiter:
        if request.param == "memory":
            limiter: RateLimiter = made[0] if made else MemoryRateLimiter()
        else:
            assert REDIS_URL is not None
            limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
        made.append(limiter)
        return limiter

    yield make
    for limiter in dict.fromkeys(made):
        await limiter.aclose()


async def test_twenty_a_minute_then_wait(make_limiter: Callable[[], RateLimiter]) -> None:
    limiter = make_limiter()
    limit = RateLimit(20, 60)
    assert [await limiter.acquire("dingtalk:robot", limit) for _ in range(20)] == [0.0] * 20
    wait = await limiter.acquire("dingtalk:robot", limit)
    assert 55 < wait <= 60
    assert await limiter.acquire("dingtalk:other-robot", limit) == 0.0  # budgets are per account


async def test_workers_share_one_budget(make_limiter: Callable[[], RateLimiter]) -> None:
    first, second = make_limiter(), make_limiter()
    limit = RateLimit(20, 60)
    granted = 0
    for i in range(30):
        if await (first if i % 2 else second).acquire("robot", limit) == 0.0:
            granted += 1
    assert granted == 20


async def test_the_window_slides(make_limiter: Callable[[], RateLimiter]) -> None:
    limiter = make_limiter()
    limit = RateLimit(2, 0.4)
    assert await limiter.acquire("k", limit) == 0.0
    assert await limiter.acquire("k", limit) == 0.0
    wait = await limiter.acquire("k", limit)
    assert 0 < wait <= 0.4
    await asyncio.sleep(wait + 0.05)
    assert await limiter.acquire("k", limit) == 0.0


class _Settings(ChannelSettings):
    token: SecretStr


class LimitedChannel(Channel):
    """A channel allowing 2 sends a minute per account, counting what it sends."""

    name = "limited"
    Settings = _Settings
    requires_template = False
    rate_limit: ClassVar[RateLimit | None] = RateLimit(2, 60)

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        self.sent.append(message.delivery_id)
        return SendResult()


async def test_a_delivery_without_budget_waits_in_the_queue(harness: Harness) -> None:
    channel = LimitedChannel()
    harness.herald.channels["limited"] = channel
    r = await harness.client.put(
        "/v1/channel-accounts/acct", json={"channel": "limited", "config": {"token": "t"}}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    await harness.put_type("limited.alert", ["limited"], {})
    r = await harness.trigger({"type": "limited.alert", "to": ["a", "b", "c", "d", "e"], "data": {}})
    assert r.status_code == 202, r.text
    await harness.drain()
    assert len(channel.sent) == 2
    async with harness.herald.db.read() as conn:
        rows = (await conn.execute(select(deliveries))).mappings().all()
    waiting = [d for d in rows if d["status"] == "pending"]
    assert len(waiting) == 3
    assert all(d["attempts"] == 0 and d["reason"] == "rate_limited" for d in waiting)
    assert all(55 < (d["next_attempt_at"] - d["updated_at"]).total_seconds() <= 60 for d in waiting)
    assert {d["status"] for d in rows if d["id"] in channel.sent} == {"sent"}
