"""Both backplanes carry every message to every subscription; Redis is chosen by URL, keeps its
channel per database number, and a lost connection is reported, never silently resubscribed."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as redis_errors

from herald.realtime.backplane import MemoryBackplane, RedisBackplane, create_backplane
from tests.conftest import REDIS_URL
from tests.realtime.support import TcpProxy


async def test_backplane_is_chosen_by_url() -> None:
    assert isinstance(create_backplane(None), MemoryBackplane)
    assert isinstance(create_backplane("memory://"), MemoryBackplane)
    redis_backplane = create_backplane("redis://127.0.0.1:6379/3")
    assert isinstance(redis_backplane, RedisBackplane) and redis_backplane.channel == "herald:realtime:3"
    await redis_backplane.aclose()
    with pytest.raises(ValueError, match="accepted: memory://, redis://"):
        create_backplane("kafka://broker")


async def test_every_subscription_hears_every_message(backplane_url: str | None) -> None:
    backplane = create_backplane(backplane_url)
    try:
        first, second = await backplane.subscribe(), await backplane.subscribe()
        await backplane.publish('{"k":"one"}')
        await backplane.publish('{"k":"two"}')
        for subscription in (first, second):
            got = [await asyncio.wait_for(subscription.next_message(), 5) for _ in range(2)]
            assert got == ['{"k":"one"}', '{"k":"two"}']
        await first.aclose()
        await second.aclose()
    finally:
        await backplane.aclose()


@pytest.mark.skipif(REDIS_URL is None, reason="needs HERALD_TEST_REDIS_URL (required under CI=true)")
async def test_two_databases_on_one_redis_server_do_not_hear_each_other() -> None:
    assert REDIS_URL is not None
    base = REDIS_URL.rsplit("/", 1)[0]
    mine, theirs = RedisBackplane(f"{base}/14"), RedisBackplane(f"{base}/13")
    try:
        subscription = await mine.subscribe()
        await theirs.publish('{"k":"not for you"}')
        await mine.publish('{"k":"mine"}')
        assert await asyncio.wait_for(subscription.next_message(), 5) == '{"k":"mine"}'
        await subscription.aclose()
    finally:
        await mine.aclose()
        await theirs.aclose()


@pytest.mark.skipif(REDIS_URL is None, reason="needs HERALD_TEST_REDIS_URL (required under CI=true)")
async def test_a_lost_redis_connection_raises_and_publishing_fails_fast() -> None:
    assert REDIS_URL is not None
    proxy = TcpProxy(REDIS_URL)
    await proxy.start()
    backplane = RedisBackplane(proxy.url, channel="herald:realtime:test-outage")
    try:
        subscription = await backplane.subscribe()
        waiting = asyncio.create_task(subscription.next_message())
        await asyncio.sleep(0.1)
        await proxy.cut()
        with pytest.raises((ConnectionError, OSError, redis_errors.ConnectionError)):
            await asyncio.wait_for(waiting, 15)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Exception):  # noqa: B017 (whatever redis-py raises: it must raise, and soon)
            await backplane.publish('{"k":"lost"}')
        assert loop.time() - started < 6
        await subscription.aclose()
        await proxy.restore()
        again = await backplane.subscribe()
        await backplane.publish('{"k":"back"}')
        assert await asyncio.wait_for(again.next_message(), 5) == '{"k":"back"}'
        await again.aclose()
    finally:
        await backplane.aclose()
        await proxy.cut()
