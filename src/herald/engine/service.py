"""The running Herald: settings, database, channels and caches, wired once per process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels import CHANNELS
from herald.channels.base import Channel
from herald.config import Settings
from herald.engine import live
from herald.engine.catalog_cache import CatalogCache
from herald.engine.events import EventOutbox
from herald.engine.preferences import CACHE_NAME as INAPP_OPT_OUTS
from herald.engine.preferences import InappOptOuts
from herald.engine.ratelimit import RateLimiter, create_rate_limiter
from herald.engine.rule_counters import RuleCounters, create_rule_counters
from herald.engine.sharedcache import create_shared_cache
from herald.realtime.service import Realtime
from herald.store import announcements as ann_store
from herald.store.db import Database
from herald.store.migrate import upgrade
from herald.store.queue import NOTIFY_OPTION
from herald.store.secretbox import SecretBox


@dataclass
class AnnouncementCache:
    """Live announcements held in the serving process; reloaded on change or after ``ttl`` seconds.

    Every change is announced over the realtime backplane, so every process reloads within moments
    of an admin's edit; the TTL is the safety net should a message be lost.
    """

    ttl: float = 2.0
    _rows: list[dict[str, Any]] = field(default_factory=list)
    for_everyone: bool = True
    """Every announcement loaded is for everyone (no audience tags): no user row is needed to filter."""
    _loaded_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    on_change: Callable[[dict[str, Any] | None, dict[str, Any] | None], None] | None = None
    """Told of every change after its commit (Herald sets it: the other processes hear of it)."""

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def changed(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """An announcement changed (``before``/``after`` its rows, None when absent): reload here now,
        and have every other process reload and tell its streams (engine/live.py)."""
        self.invalidate()
        if self.on_change is not None:
            self.on_change(before, after)

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
                    self.for_everyone = all((a["audience"] or {}).get("all") for a in self._rows)
                    self._loaded_at = time.monotonic()
        return [
            a
            for a in self._rows
            if (a["starts_at"] is None or a["starts_at"] <= now) and (a["ends_at"] is None or a["ends_at"] > now)
        ]


class EdgeCache(Protocol):
    """A per-process cache of what admins change (announcements, types and templates)."""

    def invalidate(self) -> None: ...


class Herald:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret_key = settings.resolved_secret_key()
        self.db = Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            # transactions that add due work wake PostgreSQL workers (store/queue.py)
            **({} if settings.is_sqlite or not settings.pg_notify else {"execution_options": {NOTIFY_OPTION: True}}),
        )
        self.box = SecretBox(self.secret_key)
        self.channels: dict[str, Channel] = {name: cls() for name, cls in CHANNELS.items()}
        self.announcements = AnnouncementCache()
        self.catalog = CatalogCache(self.db)
        self.inapp_opt_outs = InappOptOuts(self.db)
        self.rate_limiter: RateLimiter = create_rate_limiter(settings.redis_url)
        self.rule_counters: RuleCounters = create_rule_counters(self.db, settings.redis_url)
        self.shared_cache = create_shared_cache(self.db, settings.redis_url)
        self.events = EventOutbox(self.box, self.wake_worker)
        for channel in self.channels.values():
            channel.bind(self.shared_cache, allow_private_urls=settings.allow_private_urls)
        self.work_available = asyncio.Event()
        # realtime: the backplane (in-process, or Redis pub/sub with HERALD_REDIS_URL) and this
        # process's open streams; the edge caches are invalidated in every process through it
        self.realtime = Realtime(
            settings.redis_url,
            heartbeat_seconds=settings.realtime_heartbeat_seconds,
            max_streams_per_user=settings.realtime_max_streams_per_user,
        )
        self.announcements.on_change = self._announcement_changed
        # by name, for Herald.cache_changed and the backplane's ``invalidate`` messages
        self.edge_caches: dict[str, EdgeCache] = {
            "announcements": self.announcements,
            "catalog": self.catalog,
            INAPP_OPT_OUTS: self.inapp_opt_outs,
        }

    def _announcement_changed(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.realtime.publish(live.announcement_message(before, after))

    def cache_changed(self, name: str) -> None:
        """What edge cache ``name`` holds was changed by an admin: reload it here at once, and in
        every other process as soon as the backplane carries the word (the TTL stays as a safety net)."""
        self.edge_caches[name].invalidate()
        self.realtime.publish(live.cache_message(name))

    async def migrate(self) -> None:
        await upgrade(self.db.engine)

    def wake_worker(self) -> None:
        self.work_available.set()

    async def close(self) -> None:
        await self.realtime.aclose()  # first: what was published goes out before the rest closes
        for channel in self.channels.values():
            await channel.aclose()
        await self.rate_limiter.aclose()
        await self.rule_counters.aclose()
        await self.shared_cache.aclose()
        await self.db.dispose()
