"""The cache channels share across processes: the same behaviour in the database and in Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.engine.sharedcache import DatabaseCache, RedisCache
from tests.conftest import REDIS_URL, Harness

KINDS = ["database"] + (["redis"] if REDIS_URL else [])


@pytest.fixture(params=KINDS)
async def caches(request: pytest.FixtureRequest, harness: Harness) -> AsyncIterator[tuple[Any, Any]]:
    """Two caches as two processes would hold them, over the same store."""
    if request.param == "database":
        yield DatabaseCache(harness.herald.db), DatabaseCache(harness.herald.db)
        return
    assert REDIS_URL is not None
    prefix = f"herald-test:{secrets.token_hex(4)}:"
    first, second = RedisCache(REDIS_URL, prefix), RedisCache(REDIS_URL, prefix)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_set_get_delete_across_processes(caches: tuple[Any, Any]) -> None:
    first, second = caches
    assert await second.get("wechat_oa:token:wx1") is None
    await first.set("wechat_oa:token:wx1", "TOKEN-1", ttl_seconds=7000)
    assert await second.get("wechat_oa:token:wx1") == "TOKEN-1"
    await second.set("wechat_oa:token:wx1", "TOKEN-2", ttl_seconds=7000)
    assert await first.get("wechat_oa:token:wx1") == "TOKEN-2"
    await first.delete("wechat_oa:token:wx1")
    assert await second.get("wechat_oa:token:wx1") is None


async def test_values_expire(caches: tuple[Any, Any]) -> None:
    first, second = caches
    await first.set("short", "v", ttl_seconds=0.3)
    assert await second.get("short") == "v"
    await asyncio.sleep(0.45)
    assert await second.get("short") is None
    await first.set("forever", "v")
    assert await second.get("forever") == "v"


async def test_add_is_first_one_wins(caches: tuple[Any, Any]) -> None:
    first, second = caches
    assert await first.add("vapid", "key-A") is True
    assert await second.add("vapid", "key-B") is False
    assert await second.get("vapid") == "key-A"
    await first.set("lock", "x", ttl_seconds=0.2)
    await asyncio.sleep(0.3)
    assert await second.add("lock", "y", ttl_seconds=10) is True  # an expired value does not block


async def test_channels_are_bound_to_the_cache(harness: Harness) -> None:
    for channel in harness.herald.channels.values():
        assert channel.cache is harness.herald.shared_cache
