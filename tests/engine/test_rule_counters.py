"""The slots of dedup, caps and throttle: the same behaviour in SQLite, PostgreSQL and Redis.

Each backend is given several instances that share one store (two engines on one database, two
Redis clients), as several workers would be: the race between them is real.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from herald.core.frequency import Window, window_key
from herald.core.rules import SkipReason
from herald.engine.rule_counters import DatabaseRuleCounters, RedisRuleCounters, RuleCounters, create_rule_counters
from herald.store import rule_slots as slot_store
from herald.store.db import Database
from herald.store.tables import rule_slots
from herald.store.types import utcnow
from tests.conftest import BACKENDS, PG_URL, REDIS_URL, _reset_postgres

COUNTER_BACKENDS = BACKENDS + (["redis"] if REDIS_URL else [])


class Counters:
    """Makes counters that share one store; ``db`` is the database for the database backends."""

    def __init__(self, backend: str, url: str | None) -> None:
        self.backend = backend
        self.url = url
        self.prefix = f"herald-test:{secrets.token_hex(4)}:"
        self.made: list[RuleCounters] = []
        self.databases: list[Database] = []

    def make(self, *, batch: int = 1000) -> RuleCounters:
        counters: RuleCounters
        if self.backend == "redis":
            assert REDIS_URL is not None
            counters = RedisRuleCounters(REDIS_URL, prefix=self.prefix)
        else:
            assert self.url is not None
            db = Database(self.url, pool_size=20)
            self.databases.append(db)
            counters = DatabaseRuleCounters(db, batch=batch)
        self.made.append(counters)
        return counters

    @property
    def db(self) -> Database:
        return self.databases[0]

    async def aclose(self) -> None:
        for counters in self.made:
            await counters.aclose()
        for db in self.databases:
            await db.dispose()


@pytest.fixture(params=COUNTER_BACKENDS)
async def counters(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Counters]:
    url: str | None = None
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "herald.db")
        url = f"sqlite+aiosqlite:///{tmp_path / 'herald.db'}"
    elif request.param == "postgres":
        assert PG_URL is not None
        await _reset_postgres(PG_URL)
        url = PG_URL
    made = Counters(request.param, url)
    yield made
    await made.aclose()


def window(name: str, max_sends: int, seconds: int = 60, reason: SkipReason = SkipReason.FREQUENCY_CAP) -> Window:
    return Window(reason, window_key("cap", name, secrets.token_hex(4)), max_sends, seconds, f"{name} is full")


async def takes(counters: RuleCounters, windows: list[Window], holders: list[str]) -> list[Window | None]:
    return [await counters.take(h, windows) for h in holders]


async def test_up_to_max_then_the_full_window(counters: Counters) -> None:
    c = counters.make()
    cap, other = window("cap", 3), window("other", 3)
    assert await takes(c, [cap], ["d1", "d2", "d3"]) == [None] * 3
    assert await c.take("d4", [cap]) == cap
    assert await c.take("d4", [other]) is None  # windows count apart
    assert await c.take("d5", []) is None


async def test_a_delivery_passing_again_takes_no_second_slot(counters: Counters) -> None:
    c = counters.make()
    cap = window("cap", 2)
    assert await takes(c, [cap], ["d1", "d1", "d1"]) == [None] * 3
    assert await c.take("d2", [cap]) is None
    assert await c.take("d3", [cap]) == cap
    assert await c.take("d1", [cap]) is None  # still its own, with the window full


async def test_a_slot_given_back_is_free_again(counters: Counters) -> None:
    c = counters.make()
    cap = window("cap", 1)
    assert await c.take("d1", [cap]) is None
    assert await c.take("d2", [cap]) == cap
    await c.give_back("d1", [cap])
    await c.give_back("d1", [cap])  # twice is harmless
    assert await c.take("d2", [cap]) is None


async def test_all_windows_or_none(counters: Counters) -> None:
    c = counters.make()
    wide, narrow = window("wide", 2), window("narrow", 1)
    assert await c.take("d1", [wide, narrow]) is None
    # d2 is refused by the narrow window and holds no slot in the wide one either
    assert await c.take("d2", [wide, narrow]) == narrow
    assert await c.take("d3", [wide]) is None
    assert await c.take("d4", [wide]) == wide


async def test_a_refused_delivery_gives_back_what_it_held(counters: Counters) -> None:
    c = counters.make()
    wide, narrow = window("wide", 1), window("narrow", 1)
    assert await c.take("d1", [wide]) is None
    assert await c.take("other", [narrow]) is None
    assert await c.take("d1", [wide, narrow]) == narrow  # the rules gained a window that is full
    assert await c.take("d2", [wide]) is None  # d1's slot in the wide one was given back


async def test_the_window_slides(counters: Counters) -> None:
    c = counters.make()
    dedup = window("dedup", 1, seconds=1, reason=SkipReason.DEDUP)
    assert await c.take("d1", [dedup]) is None
    assert await c.take("d2", [dedup]) == dedup
    await asyncio.sleep(1.1)
    assert await c.take("d2", [dedup]) is None
    assert await c.take("d3", [dedup]) == dedup


async def test_fifty_at_once_on_two_instances_take_exactly_three(counters: Counters) -> None:
    first, second = counters.make(), counters.make()
    cap, throttle = window("cap", 3), window("throttle", 10)
    results = await asyncio.gather(*((first if i % 2 else second).take(f"d{i}", [cap, throttle]) for i in range(50)))
    assert results.count(None) == 3
    assert set(results) - {None} == {cap}
    # the throttle took only the three that went through (all or none)
    assert await takes(first, [throttle], [f"t{i}" for i in range(8)]) == [None] * 7 + [throttle]


async def test_many_windows_in_opposite_orders_do_not_deadlock(counters: Counters) -> None:
    first, second = counters.make(), counters.make()
    shared = [window(f"w{i}", 25) for i in range(6)]
    async with asyncio.timeout(30):
        results = await asyncio.gather(
            *((first if i % 2 else second).take(f"d{i}", shared if i % 2 else shared[::-1]) for i in range(40))
        )
    assert results.count(None) == 25


async def test_expired_slots_are_purged_in_batches(counters: Counters) -> None:
    c = counters.make(batch=2)
    if counters.backend == "redis":
        short = window("short", 5, seconds=1)
        assert await c.take("d1", [short]) is None
        assert isinstance(c, RedisRuleCounters)
        ttl = await c._redis.pttl(c._prefix + short.key)
        assert 0 < ttl <= 1000  # the key goes with its last slot
        assert await c.purge_expired() == 0
        return
    now = utcnow()
    async with counters.db.write() as conn:
        await conn.execute(
            insert(rule_slots),
            [{"key": f"cap:{i}", "holder": "d", "expires_at": now - timedelta(seconds=1)} for i in range(5)]
            + [{"key": "cap:live", "holder": "d", "expires_at": now + timedelta(hours=1)}],
        )
    assert await c.purge_expired() == 5
    async with counters.db.read() as conn:
        left = (await conn.execute(select(rule_slots.c.key))).scalars().all()
        assert left == ["cap:live"]
        assert await slot_store.count_live(conn, "cap:live", utcnow()) == 1


async def test_the_backend_follows_the_redis_url(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        assert isinstance(create_rule_counters(db, None), DatabaseRuleCounters)
        redis_counters = create_rule_counters(db, "redis://127.0.0.1:1/0")
        assert isinstance(redis_counters, RedisRuleCounters)
        await redis_counters.aclose()
    finally:
        await db.dispose()
