"""The SharedCache channels use (channels/base.py): in the database, or in Redis when configured."""

from __future__ import annotations

from datetime import timedelta

from herald.store import kv
from herald.store.db import Database
from herald.store.types import utcnow


class DatabaseCache:
    def __init__(self, db: Database, prefix: str = "cache:") -> None:
        self._db = db
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        async with self._db.read() as conn:
            return await kv.get_value(conn, self._prefix + key, utcnow())

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        expires = utcnow() + timedelta(seconds=ttl_seconds) if ttl_seconds is not None else None
        async with self._db.write() as conn:
            await kv.put_value(conn, self._prefix + key, value, expires)

    async def add(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=ttl_seconds) if ttl_seconds is not None else None
        async with self._db.write() as conn:
            return await kv.add_value(conn, self._prefix + key, value, expires, now)

    async def delete(self, key: str) -> None:
        async with self._db.write() as conn:
            await kv.delete_value(conn, self._prefix + key)

    async def aclose(self) -> None:
        return None


class RedisCache:
    def __init__(self, url: str, prefix: str = "herald:cache:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(self._prefix + key)
        return str(value) if value is not None else None

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        px = int(ttl_seconds * 1000) if ttl_seconds is not None else None
        await self._redis.set(self._prefix + key, value, px=px)

    async def add(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        px = int(ttl_seconds * 1000) if ttl_seconds is not None else None
        return bool(await self._redis.set(self._prefix + key, value, px=px, nx=True))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_shared_cache(db: Database, redis_url: str | None) -> DatabaseCache | RedisCache:
    return RedisCache(redis_url) if redis_url else DatabaseCache(db)
