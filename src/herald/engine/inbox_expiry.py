"""When an open stream's unread items expire: the moment to tell the client, and which items went.

An expired item leaves the inbox at once (every read filters it out), but nothing is written when
it happens, so no backplane message says so. Each open stream (``engine/streams.py``) therefore
keeps the time its user's next unread item expires — read from the unread index when the stream
opens, lowered by each new item it passes on — and at that moment sends ``inbox.removed`` for the
items that expired, then the counts. Read items that expire leave the feed at its next read.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from herald.engine.service import Herald
from herald.store import inbox as inbox_store
from herald.store.types import utcnow


class UnreadExpiry:
    """The next expiry among one user's unread items, as an open stream follows it."""

    def __init__(self, herald: Herald, user_id: str) -> None:
        self._herald = herald
        self._user_id = user_id
        self._checked = utcnow()
        """Items that expired up to here were reported (or expired before the stream opened)."""
        self._next: datetime | None = None

    async def load(self) -> None:
        """Read the next expiry (when the stream opens, and after each one passes)."""
        async with self._herald.db.read() as conn:
            self._next = await inbox_store.next_unread_expiry(conn, self._user_id, after=self._checked)

    def saw(self, item_json: str) -> None:
        """An item passed on to the client (an ``inbox.new`` / ``inbox.updated`` event's data): an
        earlier expiry than the one awaited becomes the one awaited."""
        if '"expires_at":null' in item_json or '"expires_at"' not in item_json:
            return  # the usual case, without parsing
        try:
            value = json.loads(item_json).get("expires_at")
            expires_at = datetime.fromisoformat(value) if isinstance(value, str) else None
        except (ValueError, AttributeError):
            return
        if expires_at is not None and expires_at > self._checked and (self._next is None or expires_at < self._next):
            self._next = expires_at

    def seconds_left(self) -> float | None:
        """Seconds until the next expiry (0 or less: due now), None when nothing will expire."""
        return None if self._next is None else (self._next - utcnow()).total_seconds()

    def postpone(self, seconds: float) -> None:
        """Look again ``seconds`` from now (the database could not be read)."""
        self._next = utcnow() + timedelta(seconds=seconds)

    async def take_expired(self) -> list[str]:
        """The unread items that expired since the last call, then the next expiry is read again."""
        now = utcnow()
        async with self._herald.db.read() as conn:
            gone = await inbox_store.unread_expired(conn, self._user_id, after=self._checked, until=now)
            self._checked = now
            self._next = await inbox_store.next_unread_expiry(conn, self._user_id, after=now)
        return gone
