"""Merging under concurrency, at the engine: two transactions on two connections writing events of
the same user and key in the same millisecond make one item of count 2, on each database; a target
whose window passed is released once, however many transactions find it at the same moment."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from herald.engine.trigger import TriggerRequest, prepare, write_prepared
from herald.store.tables import inbox_items
from herald.store.types import utcnow
from tests.api.test_merge import LIKED, put_liked
from tests.conftest import Harness


def request(n: int, users: list[str] | None = None) -> TriggerRequest:
    return TriggerRequest(
        type=LIKED,
        to=list(users or ["alice"]),
        data={"post": {"id": "p1", "title": "t"}},
        actor={"id": f"u{n}", "name": f"user {n}"},
    )


async def rows(h: Harness) -> list[dict[str, Any]]:
    query = select(inbox_items).order_by(inbox_items.c.created_at)
    async with h.herald.db.read() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def write_holding(h: Harness, n: int, now: datetime, wrote: asyncio.Event, hold: float) -> None:
    """Write event ``n`` in a transaction that stays open ``hold`` seconds after the write."""
    prepared = await prepare(h.herald, request(n), now=now)
    async with h.herald.db.write() as conn:
        await write_prepared(h.herald, conn, [prepared], now=now)
        wrote.set()
        await asyncio.sleep(hold)


async def write_after(h: Harness, n: int, now: datetime, other_wrote: asyncio.Event) -> None:
    await other_wrote.wait()
    prepared = await prepare(h.herald, request(n), now=now)
    async with h.herald.db.write() as conn:  # PostgreSQL: its upsert waits for the first transaction
        await write_prepared(h.herald, conn, [prepared], now=now)


async def test_two_transactions_in_the_same_millisecond_make_one_item(harness: Harness) -> None:
    h = harness
    await put_liked(h)
    now = utcnow()
    wrote = asyncio.Event()
    await asyncio.gather(write_holding(h, 1, now, wrote, 0.3), write_after(h, 2, now, wrote))
    [item] = await rows(h)
    assert item["count"] == 2
    assert [a["id"] for a in item["actors"]] == ["u2", "u1"]
    assert item["title"] == "user 2、user 1等 2 人赞了你的文章"


async def test_a_stale_target_is_released_once_under_concurrency(harness: Harness) -> None:
    h = harness
    await put_liked(h, window=60)
    start = utcnow()
    async with h.herald.db.write() as conn:
        await write_prepared(h.herald, conn, [await prepare(h.herald, request(0), now=start)], now=start)
    later = start + timedelta(seconds=61)
    wrote = asyncio.Event()
    await asyncio.gather(
        write_holding(h, 1, later, wrote, 0.3), write_after(h, 2, later, wrote), write_after(h, 3, later, wrote)
    )
    old, new = await rows(h)
    assert (old["count"], old["merge_key"]) == (1, None)  # released, untouched otherwise
    assert new["count"] == 3 and new["merge_key"] is not None
    assert new["merge_until"] == later + timedelta(seconds=60)


async def test_many_recipients_in_opposite_orders_do_not_deadlock(harness: Harness) -> None:
    h = harness
    await put_liked(h)
    users = [f"user-{i:02d}" for i in range(30)]
    now = utcnow()

    async def one(n: int) -> None:
        order = users if n % 2 else list(reversed(users))
        prepared = await prepare(h.herald, request(n, order), now=now)
        async with h.herald.db.write() as conn:
            await write_prepared(h.herald, conn, [prepared], now=now)

    await asyncio.gather(*(one(n) for n in range(8)))
    assert sorted({r["user_id"]: r["count"] for r in await rows(h)}.values()) == [8] * 30
