"""Shared small values with an expiry, in the database (the cache when Redis is not configured)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.tables import kv_entries


async def get_value(conn: AsyncConnection, key: str, now: datetime) -> str | None:
    row = await conn.execute(
        select(kv_entries.c.value).where(
            kv_entries.c.key == key, or_(kv_entries.c.expires_at.is_(None), kv_entries.c.expires_at > now)
        )
    )
    value = row.scalar()
    return str(value) if value is not None else None


async def put_value(conn: AsyncConnection, key: str, value: str, expires_at: datetime | None) -> None:
    stmt = upsert(conn, kv_entries).values(key=key, value=value, expires_at=expires_at)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[kv_entries.c.key], set_={"value": value, "expires_at": expires_at})
    )


async def add_value(conn: AsyncConnection, key: str, value: str, expires_at: datetime | None, now: datetime) -> bool:
    """Store ``value`` only if the key holds nothing live; True if this call stored it."""
    await conn.execute(delete(kv_entries).where(kv_entries.c.key == key, kv_entries.c.expires_at <= now))
    stmt = upsert(conn, kv_entries).values(key=key, value=value, expires_at=expires_at)
    result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=[kv_entries.c.key]))
    return bool(result.rowcount)


async def delete_value(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(kv_entries).where(kv_entries.c.key == key))
