"""Publishing announcements: one public row each (fan-out on read), and the serving processes'
cache of live ones told of every change after its commit.

The cache (``Herald.announcements``) reloads in this process at once and sends ONE backplane message
naming the announcement and who could see it before and after: every API process reloads its own
cache and tells the users it holds streams for (``announcement.new`` / ``updated`` / ``removed``,
``banner.changed``), whatever the size of the audience.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import AnnouncementKind, ContentType
from herald.core.errors import Invalid, NotFound
from herald.core.ids import new_id
from herald.store import announcements as ann_store
from herald.store.db import Database
from herald.store.types import utcnow

REQUIRED = ("title", "kind", "content_type", "audience")
"""Fields a change may set but not clear."""


class LiveAnnouncements(Protocol):
    """The cache of live announcements (``Herald.announcements``)."""

    def changed(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Called after the commit of each change with the row before and after it (None: absent)."""


OnCreated = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]
"""Called with the saved announcement inside the transaction that created it."""


@dataclass(frozen=True)
class NewAnnouncement:
    title: str
    summary: str | None = None
    body: str | None = None
    kind: AnnouncementKind = AnnouncementKind.NOTICE
    content_type: ContentType = ContentType.TEXT
    media_url: str | None = None
    action_url: str | None = None
    data: dict[str, Any] | None = None
    audience: Mapping[str, Any] | None = None
    """``{"all": true}`` or ``{"tags": [...]}``; None is everyone."""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    """Invalid naming ``ends_at`` unless the announcement ends after it starts."""
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise Invalid([("ends_at", "must be after starts_at")])


async def create_announcement(
    db: Database, live: LiveAnnouncements, new: NewAnnouncement, *, on_created: OnCreated | None = None
) -> dict[str, Any]:
    """Publish ``new`` and return it as saved (times in UTC)."""
    check_window(new.starts_at, new.ends_at)
    now = utcnow()
    row = asdict(new) | {
        "id": new_id("ann"),
        "kind": new.kind.value,
        "content_type": new.content_type.value,
        "audience": dict(new.audience) if new.audience is not None else {"all": True},
        # its place in the feed is the moment it goes live
        "feed_at": max(now, new.starts_at or now),
        "created_at": now,
        "updated_at": now,
    }
    async with db.write() as conn:
        await ann_store.create_announcement(conn, row)
        saved = await ann_store.get_announcement(conn, row["id"])  # times come back in UTC
        assert saved is not None
        if on_created is not None:
            await on_created(conn, saved)
    live.changed(None, saved)
    return saved


async def update_announcement(
    db: Database, live: LiveAnnouncements, announcement_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply ``changes`` (the fields of ``NewAnnouncement`` being set) and return the announcement.

    Invalid when a required field would be cleared or the window would end before it starts;
    NotFound when there is no such announcement.
    """
    values = {k: (v.value if isinstance(v, Enum) else v) for k, v in changes.items()}
    for k in REQUIRED:
        if k in values and values[k] is None:
            raise Invalid([(k, "may not be null")])
    async with db.write() as conn:
        before = await ann_store.get_announcement(conn, announcement_id)
        if before is None:
            raise NotFound("announcement")
        check_window(values.get("starts_at", before["starts_at"]), values.get("ends_at", before["ends_at"]))
        values["updated_at"] = utcnow()
        if "starts_at" in values:  # its place in the feed follows the moment it goes live
            values["feed_at"] = max(before["created_at"], values["starts_at"] or before["created_at"])
        await ann_store.update_announcement(conn, announcement_id, values)
        row = await ann_store.get_announcement(conn, announcement_id)
    assert row is not None
    live.changed(before, row)
    return row


async def delete_announcement(db: Database, live: LiveAnnouncements, announcement_id: str) -> None:
    """Withdraw an announcement (and with it every user's read marks); NotFound when there is none."""
    async with db.write() as conn:
        before = await ann_store.get_announcement(conn, announcement_id)
        if before is None or not await ann_store.delete_announcement(conn, announcement_id):
            raise NotFound("announcement")
    live.changed(before, None)
