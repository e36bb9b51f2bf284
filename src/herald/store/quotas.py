"""Consumable per-user send grants: granted in bulk, taken one per send, zeroed when refused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.tables import send_quotas


async def grant(conn: AsyncConnection, user_id: str, key: str, count: int, now: datetime) -> int:
    """Add ``count`` grants; returns what remains."""
    stmt = upsert(conn, send_quotas).values(user_id=user_id, key=key, remaining=count, updated_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[send_quotas.c.user_id, send_quotas.c.key],
            set_={"remaining": send_quotas.c.remaining + count, "updated_at": now},
        )
    )
    return await remaining(conn, user_id, key)


async def remaining(conn: AsyncConnection, user_id: str, key: str) -> int:
    value = (
        await conn.execute(
            select(send_quotas.c.remaining).where(send_quotas.c.user_id == user_id, send_quotas.c.key == key)
        )
    ).scalar()
    return int(value or 0)


async def take_one(conn: AsyncConnection, user_id: str, key: str, now: datetime) -> bool:
    """Consume one grant atomically; False if there is none."""
    result = await conn.execute(
        update(send_quotas)
        .where(send_quotas.c.user_id == user_id, send_quotas.c.key == key, send_quotas.c.remaining > 0)
        .values(remaining=send_quotas.c.remaining - 1, updated_at=now)
    )
    return result.rowcount > 0


async def give_back(conn: AsyncConnection, user_id: str, key: str, now: datetime) -> None:
    await grant(conn, user_id, key, 1, now)


async def zero(conn: AsyncConnection, user_id: str, key: str, now: datetime) -> None:
    await conn.execute(
        update(send_quotas)
        .where(send_quotas.c.user_id == user_id, send_quotas.c.key == key)
        .values(remaining=0, updated_at=now)
    )
