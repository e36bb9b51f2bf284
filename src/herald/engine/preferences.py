"""Users' preferences in the engine: saving a document, and the in-app decision at trigger time.

External channels are decided by the worker (``pipeline.run_stages``, with the batch's documents
loaded once in ``Worker._load_context``). In-app items are written by the trigger itself, on its
hot path (engine/trigger.py), so the in-app decision is made there, on the in-app index
(store/preferences.py) and at no cost at all while nobody turned the inbox off:

- ``InappOptOuts`` answers, per type, whether *anyone* turned the inbox off for the type or its
  category: one index probe per type per process every ``ttl`` seconds, held in memory between.
  While the answer is no, a trigger reads nothing more (and a PostgreSQL in-app trigger stays
  one statement).
- When it is yes, the trigger reads the index rows of its recipients in one statement
  (``opted_out``) and writes, for those who turned the inbox off, no item but a delivery row
  ``inapp`` skipped with reason ``preference``, final from the start and never claimed, so that
  ``GET /v1/notifications/{id}`` says why they have no item.
- A save that turns the inbox off somewhere it was not invalidates the answer here at once and,
  over the realtime backplane, in every other process (``Herald.cache_changed``); the TTL bounds a
  lost message. Turning it back on needs no word: a stale "yes" costs a read, not a wrong answer.

Critical types skip all of it: they bypass preferences.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import Category, Priority
from herald.core.errors import Invalid
from herald.core.ids import new_ids
from herald.core.preferences import INAPP, Preferences, inapp_choices, inapp_off, inapp_scopes, parse_preferences
from herald.core.rules import SkipReason
from herald.store import preferences as preference_store
from herald.store import users as user_store
from herald.store.db import Database
from herald.store.types import utcnow

if TYPE_CHECKING:
    from herald.engine.service import Herald

CATEGORIES = tuple(c.value for c in Category)
CACHE_NAME = "inapp_opt_outs"
"""The edge cache's name for ``Herald.cache_changed``."""


class InappOptOuts:
    """Per process: whether anyone turned the inbox off for a type (or its category)."""

    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        self.db = db
        self.ttl = ttl
        self._answers: dict[tuple[str, str], tuple[float, bool]] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[bool]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        self._generation += 1
        self._answers.clear()
        self._loading.clear()  # a probe in flight answers its own callers and stores nothing

    async def anyone(self, type_key: str, category: str) -> bool:
        """Whether some user's in-app index turns the inbox off for ``type_key`` or ``category``.
        The caller holds no connection (a probe on a miss opens its own, once per type at a time)."""
        key = (type_key, category)
        known = self._answers.get(key)
        if known is not None and time.monotonic() - known[0] < self.ttl:
            return known[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._probe(key))
            pending.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(pending)  # a caller that goes away does not cancel the others'

    def _forget(self, key: tuple[str, str], done: asyncio.Future[bool]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter had it raised

    async def _probe(self, key: tuple[str, str]) -> bool:
        generation, started_at = self._generation, time.monotonic()
        async with self.db.read() as conn:
            found = await preference_store.anyone_inapp_off(conn, inapp_scopes(key[1], key[0]))
        if generation == self._generation:
            if len(self._answers) > 10_000:  # types are few; a bound all the same
                self._answers.clear()
            self._answers[key] = (started_at, found)
        return found


async def inapp_check_needed(herald: Herald, type_row: Mapping[str, Any], notification: Mapping[str, Any]) -> bool:
    """Whether writing ``notification``'s in-app items must first ask who turned the inbox off."""
    if INAPP not in notification["channels"] or type_row.get("critical"):
        return False
    return await herald.inapp_opt_outs.anyone(notification["type_key"], notification["category"])


@dataclass(frozen=True)
class InappAsk:
    """The recipients of one notification whose in-app answer is wanted."""

    type_key: str
    category: str
    user_ids: Sequence[str]


async def opted_out(conn: AsyncConnection, asks: Sequence[InappAsk]) -> list[set[str]]:
    """For each ask, the recipients who turned the inbox off for its type: one statement for all."""
    if not asks:
        return []
    scopes = list(dict.fromkeys(s for a in asks for s in inapp_scopes(a.category, a.type_key)))
    user_ids = list(dict.fromkeys(u for a in asks for u in a.user_ids))
    rows = await preference_store.inapp_choices_of(conn, user_ids, scopes)
    return [{u for u in a.user_ids if u in rows and inapp_off(rows[u], a.category, a.type_key)} for a in asks]


def skipped_inapp_rows(
    notification: Mapping[str, Any], user_ids: Collection[str], *, now: datetime, expires_at: datetime | None
) -> list[dict[str, Any]]:
    """Delivery rows recording that these recipients got no in-app item because they turned the
    inbox off: final (skipped) when written, never claimed by a worker."""
    if not user_ids:
        return []
    rank = Priority(notification["priority"]).rank
    detail = f"the user turned off the in-app inbox for {notification['type_key']}"
    return [
        {
            "id": delivery_id,
            "notification_id": notification["id"],
            "user_id": user_id,
            "channel": INAPP,
            "account": None,
            "status": "skipped",
            "reason": SkipReason.PREFERENCE.value,
            "reason_detail": detail,
            "priority": rank,
            "attempts": 0,
            "last_error": None,
            "provider_message_id": None,
            "next_attempt_at": None,
            "lease_until": None,
            "lease_owner": None,
            "expires_at": expires_at,
            "created_at": now,
            "updated_at": now,
        }
        for delivery_id, user_id in zip(new_ids("dlv", len(user_ids)), sorted(user_ids), strict=True)
    ]


# -- saving ------------------------------------------------------------------------------------------


def check_document(herald: Herald, document: Any) -> Preferences:
    """A document a client sent, as preferences; Invalid naming each field that is wrong."""
    prefs, problems = parse_preferences(document, channels=herald.channels.keys(), categories=CATEGORIES)
    if problems:
        raise Invalid(problems)
    return prefs


@dataclass(frozen=True)
class Saved:
    updated_at: datetime
    inapp_turned_off: bool


async def save(conn: AsyncConnection, user_id: str, prefs: Preferences) -> Saved:
    """Replace the user's document (creating the user if new), in the caller's transaction; once
    committed, pass the answer to ``announce``."""
    now = utcnow()
    await user_store.ensure_users(conn, [user_id])
    turned_off = await preference_store.put_document(conn, user_id, prefs, inapp_choices(prefs, CATEGORIES), now)
    return Saved(now, turned_off)


def announce(herald: Herald, saved: Saved) -> None:
    """After the commit: if the inbox was turned off somewhere new, every process forgets its
    "nobody did" answers (here at once, elsewhere over the backplane)."""
    if saved.inapp_turned_off:
        herald.cache_changed(CACHE_NAME)
