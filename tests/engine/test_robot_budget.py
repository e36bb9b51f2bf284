"""A DingTalk robot takes 20 messages a minute: two workers sharing a Redis budget send no more."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from herald.engine.ratelimit import RedisRateLimiter
from herald.engine.service import Herald
from herald.engine.worker import Worker
from herald.store.tables import deliveries
from tests.channels.fakes_robots import FakeRobot, running_robot
from tests.conftest import REDIS_URL, SHARED_BACKENDS, Harness
from tests.support import free_port


@pytest.fixture
def robot() -> Iterator[tuple[FakeRobot, str]]:
    with running_robot(free_port(), {"errcode": 0, "errmsg": "ok"}) as server:
        yield server


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_two_workers_keep_to_twenty_a_minute(
    harness: Harness, robot: tuple[FakeRobot, str], backend: str
) -> None:
    fake, base_url = robot
    r = await harness.client.put(
        "/v1/channel-accounts/ops-robot",
        json={"channel": "dingtalk", "config": {"access_token": "tok", "secret": "SEC123", "base_url": base_url}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    await harness.put_type("ops.alert", ["dingtalk"], {"dingtalk": {"msgtype": "text", "text": "告警 ${n}"}})
    r = await harness.trigger({"type": "ops.alert", "to": [f"oncall-{i}" for i in range(30)], "data": {"n": 1}})
    assert r.status_code == 202, r.text

    # Two workers: on Redis, two Herald instances (as two processes would be) sharing one budget;
    # in-process, two workers of the same process sharing its budget.
    second = harness.herald
    if backend == "redis":
        assert REDIS_URL is not None
        prefix = f"herald-test:{secrets.token_hex(4)}:"
        second = Herald(harness.herald.settings)
        for h in (harness.herald, second):
            await h.rate_limiter.aclose()
            h.rate_limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        for _ in range(5):
            await asyncio.gather(Worker(harness.herald).run_once(), Worker(second).run_once())
    finally:
        if second is not harness.herald:
            await second.close()

    assert len(fake.requests) == 20
    async with harness.herald.db.read() as conn:
        rows = (await conn.execute(select(deliveries.c.status, deliveries.c.attempts))).all()
    assert sorted(s for s, _ in rows).count("sent") == 20
    assert [a for s, a in rows if s == "pending"] == [0] * 10  # waiting for the window, not failed
