"""What open realtime streams receive: backplane messages turned into each connected user's events,
the replay of what a reconnecting client missed, and the loop one connection runs.

Transport-neutral: the SSE and WebSocket endpoints (api/realtime.py) hand a ``send`` function to
``Session.run`` and the item view (``api.views.inbox_item_view``) to ``LiveFeed``, so an event's data
is exactly what the REST endpoints return. Work is per process and per message, never per user per
message through the backplane: a message names users; this process keeps those connected here and
reads what they need in batches (one statement per 500 users).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.errors import NotFound
from herald.engine import inbox, live
from herald.engine.inbox_expiry import UnreadExpiry
from herald.engine.service import Herald
from herald.realtime.hub import Event, Hub, Stream
from herald.realtime.ids import new_event_id
from herald.realtime.publisher import GAP
from herald.store import announcements as ann_store
from herald.store import inbox as inbox_store
from herald.store import users as user_store
from herald.store.types import utcnow

log = logging.getLogger(__name__)

READY = "ready"
HEARTBEAT = "heartbeat"
COUNTS = "counts"
INBOX_NEW, INBOX_UPDATED, INBOX_REMOVED = "inbox.new", "inbox.updated", "inbox.removed"
ANNOUNCEMENT_NEW, ANNOUNCEMENT_UPDATED, ANNOUNCEMENT_REMOVED = (
    "announcement.new",
    "announcement.updated",
    "announcement.removed",
)
BANNER_CHANGED = "banner.changed"
SYNC_REQUIRED = "sync.required"
TOKEN_EXPIRED = "token.expired"  # noqa: S105 (an event name)

REPLAY_OVERLAP = timedelta(seconds=10)
"""Replay starts this long before the id's time: a transaction that committed after a later event was
sent (its rows dated earlier) is still replayed; clients deduplicate ``inbox.new`` by item id."""
REPLAY_MAX_AGE = timedelta(hours=24)
REPLAY_LIMIT = 100
BATCH = 500
RESYNC_SPREAD_SECONDS = 2.0
EXPIRY_RETRY_SECONDS = 5.0
"""An unread item expired but the database could not be read: asked again this much later."""
"""After an outage every stream of a process replays: spread over up to this long, not all at once."""

ItemView = Callable[[dict[str, Any]], dict[str, Any]]
Send = Callable[[Event], Awaitable[None]]


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def make_event(name: str, data: Any, *, with_id: bool = True) -> Event:
    return Event(new_event_id() if with_id else "", name, dumps(data))


def _batches(items: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _visible(spec: dict[str, Any] | None, tags: list[str] | None, now: datetime) -> bool:
    """Whether an announcement with this audience and window is in this user's feed at ``now``."""
    if spec is None or not inbox.in_audience(spec, tags):
        return False
    starts, ends = spec.get("starts_at"), spec.get("ends_at")
    if isinstance(starts, str):
        starts = datetime.fromisoformat(starts)
    if isinstance(ends, str):
        ends = datetime.fromisoformat(ends)
    return (starts is None or starts <= now) and (ends is None or ends > now)


def _written(row: dict[str, Any]) -> str:
    """The event for an item just written: an item with a count above 1 was merged into (engine/merge.py)."""
    return INBOX_UPDATED if (row.get("count") or 1) > 1 else INBOX_NEW


def _needs_tags(specs: Sequence[dict[str, Any] | None]) -> bool:
    return any(s is not None and not (s["audience"] or {}).get("all") for s in specs)


class LiveFeed:
    """This process's side of the backplane: ``handle`` is the listener's handler."""

    def __init__(self, herald: Herald, item_view: ItemView) -> None:
        self.herald = herald
        self.view = item_view

    @property
    def hub(self) -> Hub:
        return self.herald.realtime.hub

    # -- backplane messages ----------------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("k")
        if kind == live.INVALIDATE:
            cache = self.herald.edge_caches.get(str(message.get("cache")))
            if cache is not None:
                cache.invalidate()
        elif kind == live.ANNOUNCEMENT:
            self.herald.announcements.invalidate()  # first: what follows reads the new state
            await self._announcement(message)
        elif kind == live.ITEMS:
            await self._items(message)
        elif kind == live.ITEM:
            await self._item(message)
        elif kind == live.COUNTS:
            users = self.hub.local([str(message.get("u"))])
            if users:
                await self.push_counts(users)
        elif kind == GAP:
            self.hub.resync_all(datetime.fromisoformat(str(message["since"])))
        # other kinds: from a newer Herald; nothing to do here

    async def _items(self, message: dict[str, Any]) -> None:
        users = self.hub.local(message.get("u") or ())
        if not users:
            return
        at = datetime.fromisoformat(message["at"])
        rows: list[dict[str, Any]] = []
        async with self.herald.db.read() as conn:
            for batch in _batches(users):
                rows += await inbox_store.items_of_chunk(conn, message["n"], at, batch)
        for row in rows:
            user_id = row.pop("user_id")
            self.hub.push(user_id, make_event(_written(row), self.view(inbox.private_item(row))))
        await self.push_counts(users)

    async def _item(self, message: dict[str, Any]) -> None:
        user_id, item_id = str(message.get("u")), str(message.get("i"))
        if user_id not in self.hub.users():
            return
        if message.get("a") == live.REMOVED:
            self.hub.push(user_id, make_event(INBOX_REMOVED, {"id": item_id}))
        else:
            try:
                item = await inbox.get_item(self.herald, user_id, item_id)
            except NotFound:  # deleted since: its own message follows
                return
            name = INBOX_NEW if message.get("a") == live.NEW else INBOX_UPDATED
            self.hub.push(user_id, make_event(name, self.view(item)))
        await self.push_counts([user_id])

    async def _announcement(self, message: dict[str, Any]) -> None:
        users = list(self.hub.users())
        if not users:
            return
        now = utcnow()
        announcement_id, before = str(message.get("i")), message.get("before")
        async with self.herald.db.read() as conn:
            rows = await self.herald.announcements.live(self.herald, now, conn)
            row = next((a for a in rows if a["id"] == announcement_id), None)
            after = live.visibility(row)
            tags = await self._tags(conn, users) if _needs_tags([before, after]) else {}
            was = {u for u in users if _visible(before, tags.get(u), now)}
            sees = {u for u in users if _visible(after, tags.get(u), now)}
            marks = await self._marks(conn, sorted(sees), [announcement_id])
        if row is not None and sees:
            shared: dict[str, Event] = {}  # users without a mark see the same item: one event object
            for user_id in sees:
                name = ANNOUNCEMENT_UPDATED if user_id in was else ANNOUNCEMENT_NEW
                mark = marks.get((user_id, announcement_id))
                if mark is not None and mark.get("deleted_at"):
                    continue
                if mark is None:
                    if name not in shared:
                        shared[name] = make_event(name, self.view(inbox.announcement_item(row, None)))
                    event = shared[name]
                else:
                    event = make_event(name, self.view(inbox.announcement_item(row, mark)))
                self.hub.push(user_id, event)
        gone = was - sees
        if gone:
            removed = make_event(ANNOUNCEMENT_REMOVED, {"id": announcement_id})
            for user_id in gone:
                self.hub.push(user_id, removed)
        banner_users = (was if before and before["kind"] == "banner" else set()) | (
            sees if after and after["kind"] == "banner" else set()
        )
        if banner_users:
            await self.push_banners(sorted(banner_users))
        if was | sees:
            await self.push_counts(sorted(was | sees))

    # -- reads for many users ---------------------------------------------------------------------

    async def _tags(self, conn: AsyncConnection, users: Sequence[str]) -> dict[str, list[str]]:
        rows = await user_store.get_users(conn, list(users))
        return {u: (rows.get(u) or {}).get("tags") or [] for u in users}

    async def _marks(
        self, conn: AsyncConnection, users: Sequence[str], announcement_ids: Sequence[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        marks: dict[tuple[str, str], dict[str, Any]] = {}
        if announcement_ids:
            for batch in _batches(users):
                marks.update(await ann_store.marks_for_users(conn, batch, announcement_ids))
        return marks

    async def counts_many(self, users: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``inbox.counts`` for many users in a few statements (the same answer, user by user)."""
        now = utcnow()
        private: dict[str, dict[str, tuple[int, int]]] = {}
        async with self.herald.db.read() as conn:
            for batch in _batches(users):
                private.update(await inbox_store.unread_and_unseen_counts(conn, batch, now=now))
            anns = await self.herald.announcements.live(self.herald, now, conn)
            tags = await self._tags(conn, users) if _needs_tags(anns) else {}
            marks = await self._marks(conn, users, [a["id"] for a in anns])
        out: dict[str, dict[str, Any]] = {}
        for user_id in users:
            theirs = [a for a in anns if inbox.in_audience(a, tags.get(user_id))]
            their_marks = {a["id"]: m for a in theirs if (m := marks.get((user_id, a["id"]))) is not None}
            out[user_id] = inbox.counts_view(private.get(user_id, {}), theirs, their_marks)
        return out

    async def push_counts(self, users: Sequence[str]) -> None:
        for user_id, counts in (await self.counts_many(users)).items():
            self.hub.push(user_id, make_event(COUNTS, counts))

    async def banners_many(self, users: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """``inbox.banners`` for many users, as views."""
        now = utcnow()
        async with self.herald.db.read() as conn:
            anns = [a for a in await self.herald.announcements.live(self.herald, now, conn) if a["kind"] == "banner"]
            tags = await self._tags(conn, users) if _needs_tags(anns) else {}
            marks = await self._marks(conn, users, [a["id"] for a in anns])
        out: dict[str, list[dict[str, Any]]] = {}
        for user_id in users:
            items = [
                inbox.announcement_item(a, marks.get((user_id, a["id"])))
                for a in anns
                if inbox.in_audience(a, tags.get(user_id))
                and not (marks.get((user_id, a["id"])) or {}).get("deleted_at")
            ]
            items.sort(key=lambda i: (i["created_at"], i["id"]), reverse=True)
            out[user_id] = [self.view(i) for i in items]
        return out

    async def push_banners(self, users: Sequence[str]) -> None:
        for user_id, items in (await self.banners_many(users)).items():
            self.hub.push(user_id, make_event(BANNER_CHANGED, {"items": items}))

    # -- replay -----------------------------------------------------------------------------------

    async def replay(self, user_id: str, since: datetime | None) -> list[Event]:
        """What ``user_id`` missed since ``since`` (None: unknown), read from the store, then the
        current counts; ``sync.required`` before them when the replay cannot cover it all."""
        events: list[Event] = []
        complete = since is not None
        now = utcnow()
        if since is not None:
            start = since - REPLAY_OVERLAP
            if start < now - REPLAY_MAX_AGE:
                start, complete = now - REPLAY_MAX_AGE, False
            async with self.herald.db.read() as conn:
                rows = await inbox_store.items_since(conn, user_id, since=start, now=now, limit=REPLAY_LIMIT + 1)
                if len(rows) > REPLAY_LIMIT:
                    rows, complete = rows[:REPLAY_LIMIT], False
                anns = await self.herald.announcements.live(self.herald, now, conn)
                changed = [a for a in anns if max(a["updated_at"], a["feed_at"]) >= start]
                tags = await self._tags(conn, [user_id]) if _needs_tags(changed) else {}
                changed = [a for a in changed if inbox.in_audience(a, tags.get(user_id))]
                marks = await ann_store.marks_for(conn, user_id, [a["id"] for a in changed])
            for row in reversed(rows):  # oldest first
                events.append(make_event(_written(row), self.view(inbox.private_item(row))))
            changed.sort(key=lambda a: (a["feed_at"], a["id"]))
            for a in changed:
                mark = marks.get(a["id"])
                if mark is not None and mark.get("deleted_at"):
                    continue
                name = ANNOUNCEMENT_NEW if a["feed_at"] >= start else ANNOUNCEMENT_UPDATED
                events.append(make_event(name, self.view(inbox.announcement_item(a, mark))))
            if any(a["kind"] == "banner" for a in changed):
                banners = await inbox.banners(self.herald, user_id)
                events.append(make_event(BANNER_CHANGED, {"items": [self.view(b) for b in banners]}))
        if not complete:
            reason = "unknown last event id" if since is None else "more was missed than a replay carries"
            events.append(make_event(SYNC_REQUIRED, {"reason": reason}))
        events.append(make_event(COUNTS, await inbox.counts(self.herald, user_id)))
        return events


class Session:
    """One open connection's life: ``open`` (subscribed, first events read), then ``run``."""

    EXPIRED, CLOSED = "expired", "closed"

    def __init__(self, feed: LiveFeed, user_id: str, *, expires_at: float) -> None:
        self.feed = feed
        self.user_id = user_id
        self.expires_at = expires_at
        self.stream: Stream | None = None
        self._first: list[Event] = []
        self._unread_expiry = UnreadExpiry(feed.herald, user_id)

    async def open(self, since: datetime | None, *, resume: bool) -> None:
        """Subscribe (TooManyStreams past the per-user limit), then read what the client starts with:
        the replay since ``since`` when ``resume``, else the counts. A database that cannot be read
        raises here, before anything was sent (the endpoint answers 503)."""
        hub = self.feed.hub
        self.stream = hub.open(self.user_id)
        try:
            realtime = self.feed.herald.realtime
            ready = make_event(
                READY,
                {
                    "user_id": self.user_id,
                    "heartbeat_seconds": realtime.heartbeat_seconds,
                    "expires_at": datetime.fromtimestamp(self.expires_at, UTC).isoformat(),
                },
            )
            if resume:
                first = await self.feed.replay(self.user_id, since)
            else:
                first = [make_event(COUNTS, await inbox.counts(self.feed.herald, self.user_id))]
            await self._unread_expiry.load()
        except BaseException:
            hub.close(self.stream)
            raise
        self._first = [ready, *first]

    def extend(self, expires_at: float) -> None:
        """A fresh token of the same user (WebSocket): the stream lives on until its expiry."""
        self.expires_at = expires_at

    def expire(self) -> None:
        """The client's token is no longer good: ``token.expired`` goes out and the stream ends."""
        self.expires_at = 0
        if self.stream is not None:
            self.stream.wake()

    async def run(self, send: Send) -> str:
        """Send events until the token expires (``EXPIRED``, after ``token.expired``) or the stream
        is closed (``CLOSED``: the client went away, the process is stopping)."""
        stream = self.stream
        assert stream is not None
        realtime = self.feed.herald.realtime
        hub = self.feed.hub
        loop = asyncio.get_running_loop()
        try:
            for event in self._first:
                await send(event)
            self._first = []
            last_sent = loop.time()
            while True:
                remaining = self.expires_at - time.time()
                if remaining <= 0:
                    expired_at = datetime.fromtimestamp(max(self.expires_at, 0), UTC).isoformat()
                    await send(make_event(TOKEN_EXPIRED, {"expired_at": expired_at}))
                    return self.EXPIRED
                if stream.closed:
                    return self.CLOSED
                if stream.resync_since is not None:
                    since, stream.resync_since = stream.resync_since, None
                    await asyncio.sleep(random.uniform(0, min(RESYNC_SPREAD_SECONDS, len(hub) / 1000)))
                    for event in await self.feed.replay(self.user_id, since):
                        await send(event)
                    last_sent = loop.time()
                    continue
                events = stream.take()
                if events:
                    for event in events:
                        if event.name in (INBOX_NEW, INBOX_UPDATED):
                            self._unread_expiry.saw(event.data)
                        await send(event)
                    last_sent = loop.time()
                    continue
                expiry = self._unread_expiry.seconds_left()
                if expiry is not None and expiry <= 0:
                    for event in await self._expired_items():
                        await send(event)
                    last_sent = loop.time()
                    continue
                idle = loop.time() - last_sent
                if idle >= realtime.heartbeat_seconds:
                    # an id only while subscribed: a client must not resume past what it may have missed
                    await send(make_event(HEARTBEAT, {}, with_id=realtime.subscribed))
                    last_sent = loop.time()
                    continue
                until_expiry = remaining if expiry is None else expiry
                await stream.wait(min(realtime.heartbeat_seconds - idle, remaining, until_expiry))
        finally:
            hub.close(stream)

    async def _expired_items(self) -> list[Event]:
        """Unread items of this user just expired: ``inbox.removed`` for each, then the counts. A
        database that cannot be read now postpones it (the stream lives on)."""
        try:
            gone = await self._unread_expiry.take_expired()
            if not gone:
                return []
            counts = await inbox.counts(self.feed.herald, self.user_id)
        except Exception as exc:
            log.debug("stream of %s: expired items not read (%s); trying again shortly", self.user_id, exc)
            self._unread_expiry.postpone(EXPIRY_RETRY_SECONDS)
            return []
        return [*(make_event(INBOX_REMOVED, {"id": item_id}) for item_id in gone), make_event(COUNTS, counts)]
