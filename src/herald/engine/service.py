"""The running Herald: settings, database, channels and caches, wired once per process."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels import CHANNELS
from herald.channels.base import Channel
from herald.config import Settings
from herald.engine.events import EventOutbox
from herald.engine.ratelimit import RateLimiter, create_rate_limiter
from herald.engine.sharedcache import create_shared_cache
from herald.store import announcements as ann_store
from herald.store.db import Database
from herald.store.migrate import upgrade
from herald.store.queue import NOTIFY_OPTION
from herald.store.secretbox import SecretBox


@dataclass
class AnnouncementCache:
    """Live announcements held in the serving process; reloaded on change or after ``ttl`` seconds.

    The TTL bounds staleness across processes until the realtime backplane carries invalidations.
    """

    ttl: float = 2.0
    _rows: list[dict[str, Any]] = field(default_factory=list)
    _loaded_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def live(self, herald: Herald, now: datetime, conn: AsyncConnection | None = None) -> list[dict[str, Any]]:
        """The live announcements; a refresh reads through ``conn`` when the caller holds one.

        A caller holding a connection must never wait for a second one: with every connection
        held by callers queued on the refresh lock, the refresh could not get one (a pool deadlock).
        """
        if time.monotonic() - self._loaded_at > self.ttl:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self.ttl:
                    if conn is not None:
                        self._rows = await ann_store.live_announcements(conn, now)
                    else:
                        async with herald.db.read() as own:
                            self._rows = await ann_store.live_announcements(own, now)
                    self._loaded_at = time.monotonic()
        return [
            a
            for a in self._rows
            if (a["starts_at"] is None or a["starts_at"] <= now) and (a["ends_at"] is None or a["ends_at"] > now)
        ]


class Herald:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret_key = settings.resolved_secret_key()
        self.db = Database(
            settings.database_url,
            # transactions that add due work wake PostgreSQL workers (store/queue.py)
            **({} if settings.is_sqlite or not settings.pg_notify else {"execution_options": {NOTIFY_OPTION: True}}),
        )
        self.box = SecretBox(self.secret_key)
        self.channels: dict[str, Channel] = {name: cls() for name, cls in CHANNELS.items()}
        self.announcements = AnnouncementCache()
        self.rate_limiter: RateLimiter = create_rate_limiter(settings.redis_url)
        self.shared_cache = create_shared_cache(self.db, settings.redis_url)
        self.events = EventOutbox(self.box, self.wake_worker)
        for channel in self.channels.values():
            channel.bind(self.shared_cache, allow_private_urls=settings.allow_private_urls)
        self.work_available = asyncio.Event()

    async def migrate(self) -> None:
        await upgrade(self.db.engine)

    def wake_worker(self) -> None:
        self.work_available.set()

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()
        await self.rate_limiter.aclose()
        await self.shared_cache.aclose()
        await self.db.dispose()
