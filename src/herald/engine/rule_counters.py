"""Where the counted delivery rules keep their slots: the database, or Redis when configured.

One operation matters: "take one slot in each of these windows for this delivery, if every one
has room", atomically, so that 50 deliveries racing for a cap of 3 on any number of workers take
exactly 3 (core/frequency.py says what a window is). All or nothing across the windows: a send
refused by its throttle holds no cap slot that would refuse another send meanwhile. A delivery
that holds a slot already (a retry, a re-claim) keeps it and takes no second one.

Backends are chosen like the rate limiter's (engine/ratelimit.py): the database when
``HERALD_REDIS_URL`` is not set (store/rule_slots.py; expired rows are purged by the worker's
housekeeping), else Redis (one Lua script; time from the Redis server, expiry by key TTL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from herald.core.frequency import Window
from herald.store import rule_slots
from herald.store.db import Database
from herald.store.types import utcnow

PURGE_BATCHES = 100
"""At most this many batches of expired slots deleted per housekeeping round (each its own
short transaction); what is left waits for the next round."""


class RuleCounters(Protocol):
    async def take(self, holder: str, windows: Sequence[Window]) -> Window | None:
        """A slot in every window for ``holder`` (None), or the first window without room (and
        none taken, ``holder``'s earlier slots in these windows given back)."""

    async def give_back(self, holder: str, windows: Sequence[Window]) -> None:
        """``holder``'s slots no longer count: its send did not go out."""

    async def purge_expired(self) -> int:
        """Forget slots that no longer count; returns how many (0 where they expire by themselves)."""

    async def aclose(self) -> None: ...


class DatabaseRuleCounters:
    def __init__(self, db: Database, *, batch: int = rule_slots.PURGE_BATCH) -> None:
        self._db = db
        self._batch = batch

    async def take(self, holder: str, windows: Sequence[Window]) -> Window | None:
        async with self._db.write() as conn:
            return await rule_slots.take_slots(conn, holder, windows, utcnow())

    async def give_back(self, holder: str, windows: Sequence[Window]) -> None:
        async with self._db.write() as conn:
            await rule_slots.give_back(conn, holder, [w.key for w in windows])

    async def purge_expired(self) -> int:
        """In small batches, each its own transaction, so no lock is held for long."""
        total = 0
        for _ in range(PURGE_BATCHES):
            async with self._db.write() as conn:
                purged = await rule_slots.purge_expired(conn, utcnow(), self._batch)
            total += purged
            if purged < self._batch:
                break
            await asyncio.sleep(0)  # other writers go between the batches
        return total

    async def aclose(self) -> None:
        return None


# KEYS: one sorted set per window (member: holder, score: when its slot stops counting, in ms of
# the Redis server's clock). ARGV[1]: the holder; then per window i: ARGV[2i] max, ARGV[2i+1]
# window in ms. Returns 0 when every slot is taken, else the index (1-based) of the full window.
_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder = ARGV[1]
local refused = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, holder) and redis.call('ZCARD', key) >= tonumber(ARGV[2 * i]) then
    refused = i
    break
  end
end
for i, key in ipairs(KEYS) do
  if refused > 0 then
    redis.call('ZREM', key, holder)
  else
    redis.call('ZADD', key, now + tonumber(ARGV[2 * i + 1]), holder)
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', key, math.ceil(tonumber(last[2])))
  end
end
return refused
"""


class RedisRuleCounters:
    def __init__(self, url: str, prefix: str = "herald:rules:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._take = self._redis.register_script(_TAKE_LUA)
        self._prefix = prefix

    async def take(self, holder: str, windows: Sequence[Window]) -> Window | None:
        if not windows:
            return None
        args: list[str | int] = [holder]
        for window in windows:
            args += [window.max, window.seconds * 1000]
        refused = int(await self._take(keys=[self._prefix + w.key for w in windows], args=args))
        return windows[refused - 1] if refused else None

    async def give_back(self, holder: str, windows: Sequence[Window]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for window in windows:
                pipe.zrem(self._prefix + window.key, holder)
            await pipe.execute()

    async def purge_expired(self) -> int:
        return 0  # each sorted set expires with its last slot (PEXPIREAT)

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_rule_counters(db: Database, redis_url: str | None) -> RuleCounters:
    if redis_url:
        return RedisRuleCounters(redis_url)
    return DatabaseRuleCounters(db)
