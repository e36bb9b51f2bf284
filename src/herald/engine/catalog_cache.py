"""Notification types and their templates, held in the serving process for the trigger's hot path.

Every trigger needs its type and the type's templates; reading them costs two statements per
trigger, for data an admin changes a few times a day. The cache keeps one entry per type:

- ``invalidate()`` drops everything. It is the single entry point for "the catalog changed": every
  committed change of a type or template goes through ``Herald.cache_changed("catalog")``, which
  calls it here at once and, over the realtime backplane (the path the announcement cache takes),
  in every other process within moments (engine/streams.py handles the ``invalidate`` message).
- Entries expire ``ttl`` seconds after their read *began*, so even a lost backplane message (Redis
  away) leaves another process on the old type for at most ``ttl``, whatever the read's duration.
- A read that was running when ``invalidate()`` was called does not store its (possibly old)
  result: the generation it started under is gone.
- Unknown types are not cached: a caller sending a bad key cannot grow the cache, and the type
  created a moment later is seen at once.

Like ``AnnouncementCache``, a refresh never waits for a pool connection while a caller holding one
waits for it: a caller that holds a connection passes it and reads through it (never queueing behind
another refresh); callers without one share a single read per type, which opens its own connection.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store import catalog
from herald.store.db import Database

INAPP = "inapp"


@dataclass(frozen=True)
class CatalogEntry:
    """A type and its templates as the trigger uses them. Shared between requests: never mutate."""

    type: dict[str, Any]
    """The type's row (``store.catalog.get_type``)."""
    templates: dict[str, dict[str, dict[str, Any]]]
    """``{channel: {locale: fields}}``."""
    inapp_needs_locale: bool = field(init=False)
    """More than one in-app locale: an in-app item's content depends on its recipient's locale."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inapp_needs_locale", len(self.templates.get(INAPP, {})) > 1)


@dataclass
class _Loaded:
    entry: CatalogEntry
    started_at: float


class CatalogCache:
    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        self.db = db
        self.ttl = ttl
        self._entries: dict[str, _Loaded] = {}
        self._loading: dict[str, asyncio.Future[CatalogEntry | None]] = {}  # one read per type at a time
        self._generation = 0

    def invalidate(self) -> None:
        """Forget every type: the next trigger of each reads it again."""
        self._generation += 1
        self._entries.clear()
        self._loading.clear()  # a read in flight finishes for its own waiters, and stores nothing

    async def get(self, key: str, conn: AsyncConnection | None = None) -> CatalogEntry | None:
        """The type ``key`` and its templates, or None when there is no such type.

        ``conn``: a connection the caller holds, to read through on a miss. A caller holding a
        connection must pass it; one that passes None must hold none.
        """
        loaded = self._entries.get(key)
        if loaded is not None and time.monotonic() - loaded.started_at < self.ttl:
            return loaded.entry
        if conn is not None:
            return await self._load(key, conn)
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, None))
            pending.add_done_callback(lambda done: self._forget(key, done))
        # shielded: a caller that goes away (client disconnected) does not cancel the others' read
        return await asyncio.shield(pending)

    def _forget(self, key: str, done: asyncio.Future[CatalogEntry | None]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter has it raised; none is left unreported

    async def _load(self, key: str, conn: AsyncConnection | None) -> CatalogEntry | None:
        generation, started_at = self._generation, time.monotonic()
        if conn is not None:
            found = await _read(conn, key)
        else:
            async with self.db.read() as own:
                found = await _read(own, key)
        if found is not None and generation == self._generation:
            self._entries[key] = _Loaded(found, started_at)
        return found


async def _read(conn: AsyncConnection, key: str) -> CatalogEntry | None:
    row = await catalog.get_type(conn, key)
    if row is None:
        return None
    return CatalogEntry(row, await catalog.get_templates(conn, key))
