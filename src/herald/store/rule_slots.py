"""Slots of the counted delivery rules (dedup, frequency caps, throttle) in the database.

Taking is atomic per window key: on PostgreSQL each key's advisory transaction lock is taken
first (in key order, so two deliveries sharing keys never wait on each other in a cycle), and the
count that follows is a new statement, so under READ COMMITTED it sees every slot committed by
whoever held the lock before; on SQLite the write transaction (``BEGIN IMMEDIATE``) is the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.frequency import Window, first_refused, lock_id
from herald.store.dialect import upsert
from herald.store.tables import rule_slots

PURGE_BATCH = 1000


async def take_slots(conn: AsyncConnection, holder: str, windows: Sequence[Window], now: datetime) -> Window | None:
    """One slot in every window for ``holder``, or none: the first window with no room (and
    ``holder``'s slots in these windows given back), else None with every slot taken (a slot it
    held already is its own, renewed from ``now``). Run inside a write transaction."""
    if not windows:
        return None
    keys = [w.key for w in windows]
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) AS k"),
            {"ids": sorted({lock_id(k) for k in keys})},
        )
    mine = case((rule_slots.c.holder == holder, 1), else_=0)
    rows = await conn.execute(
        select(rule_slots.c.key, func.count() - func.sum(mine), func.max(mine))
        .where(rule_slots.c.key.in_(keys), rule_slots.c.expires_at > now)
        .group_by(rule_slots.c.key)
    )
    taken, held = {}, set()
    for key, others, own in rows:
        taken[key] = int(others)
        if own:
            held.add(key)
    refused = first_refused(windows, taken, held)
    if refused is not None:
        await give_back(conn, holder, keys)
        return refused
    # one statement with its rows as parameters (executemany): compiled once and cached, where a
    # multi-row VALUES would be compiled again for every call
    stmt = upsert(conn, rule_slots)
    stmt = stmt.on_conflict_do_update(
        index_elements=[rule_slots.c.key, rule_slots.c.holder], set_={"expires_at": stmt.excluded.expires_at}
    )
    await conn.execute(
        stmt, [{"key": w.key, "holder": holder, "expires_at": now + timedelta(seconds=w.seconds)} for w in windows]
    )
    return None


async def give_back(conn: AsyncConnection, holder: str, keys: Sequence[str]) -> None:
    """``holder``'s slots in these windows no longer count (its send did not go out)."""
    await conn.execute(delete(rule_slots).where(rule_slots.c.holder == holder, rule_slots.c.key.in_(keys)))


async def purge_expired(conn: AsyncConnection, now: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` slots that no longer count; returns how many."""
    expired = (
        select(rule_slots.c.key, rule_slots.c.holder).where(rule_slots.c.expires_at <= now).limit(limit).subquery()
    )
    result = await conn.execute(
        delete(rule_slots).where(
            tuple_(rule_slots.c.key, rule_slots.c.holder).in_(select(expired.c.key, expired.c.holder))
        )
    )
    return int(result.rowcount or 0)


async def count_live(conn: AsyncConnection, key: str, now: datetime) -> int:
    """How many slots of ``key`` count now (for tests and operators)."""
    value = await conn.execute(
        select(func.count()).select_from(rule_slots).where(rule_slots.c.key == key, rule_slots.c.expires_at > now)
    )
    return int(value.scalar_one())
