"""Per-account send budgets, in-process or shared by every worker through Redis.

A provider's "20 messages per minute per robot" is a sliding window: DingTalk counts any 60 s.
A token bucket of 20 refilled at 20/min lets up to 40 through in one such minute, so the budget
is kept as an exact sliding-window log (timestamps of the sends in the window): the answer is
either "go" or "the earliest moment a send is allowed again". A delivery without budget is not
held by the worker; it goes back to the queue with that moment as its next attempt.

Backends are chosen by URL like the rest of Herald: ``memory://`` (one process) or
``redis://…`` (atomic Lua script; time from the Redis server, so workers' clocks do not matter).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from typing import Protocol

from herald.channels.base import RateLimit


class RateLimiter(Protocol):
    async def acquire(self, key: str, limit: RateLimit) -> float:
        """Take one send from ``key``'s budget: 0.0 if allowed now, else seconds until it would be."""

    async def aclose(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._sends: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, key: str, limit: RateLimit) -> float:
        async with self._lock:
            now = time.monotonic()
            window = self._sends.setdefault(key, deque())
            while window and window[0] <= now - limit.per_seconds:
                window.popleft()
            if len(window) < limit.count:
                window.append(now)
                return 0.0
            return window[0] + limit.per_seconds - now

    async def aclose(self) -> None:
        return None


# KEYS[1] the window's sorted set; ARGV: count, window (ms), a unique member.
# Scores are the Redis server's clock in ms; returns "0" when taken, else ms to wait.
_SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < count then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str = "herald:ratelimit:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._script = self._redis.register_script(_SLIDING_WINDOW_LUA)
        self._prefix = prefix

    async def acquire(self, key: str, limit: RateLimit) -> float:
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        window_ms = int(limit.per_seconds * 1000)
        waited = await self._script(keys=[self._prefix + key], args=[limit.count, window_ms, member])
        return max(0.0, float(waited) / 1000)

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_rate_limiter(redis_url: str | None) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()
