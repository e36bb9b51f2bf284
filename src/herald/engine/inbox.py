"""The inbox feed: a user's private items and the live announcements of their audience, merged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from herald.core.cursor import decode_cursor, encode_cursor
from herald.core.errors import NotFound
from herald.engine import live
from herald.engine.service import Herald
from herald.store import announcements as ann_store
from herald.store import inbox as inbox_store
from herald.store import users as user_store
from herald.store.types import utcnow

ANNOUNCEMENT = "announcement"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def in_audience(announcement: dict[str, Any], user_tags: list[str] | None) -> bool:
    audience = announcement["audience"] or {}
    if audience.get("all"):
        return True
    wanted = set(audience.get("tags") or [])
    return bool(wanted and user_tags and wanted.intersection(user_tags))


async def _user_announcements(herald: Herald, conn: Any, user_id: str, now: datetime) -> list[dict[str, Any]]:
    """Live announcements this user is in the audience of (user row read only when tags matter)."""
    live = await herald.announcements.live(herald, now, conn)
    if herald.announcements.for_everyone or all((a["audience"] or {}).get("all") for a in live):
        return live  # the usual case: everyone's, no user row needed
    user = await user_store.get_user(conn, user_id)
    tags = (user or {}).get("tags") or []
    return [a for a in live if in_audience(a, tags)]


def announcement_item(a: dict[str, Any], mark: dict[str, Any] | None) -> dict[str, Any]:
    mark = mark or {}
    return {
        "id": a["id"],
        "type": ANNOUNCEMENT,
        "category": ANNOUNCEMENT,
        "kind": a["kind"],
        "content_type": a["content_type"],
        "media_url": a["media_url"],
        "title": a["title"],
        "summary": a["summary"],
        "body": a["body"],
        "data": a["data"] or {},
        "actor": None,
        "target": None,
        "action_url": a["action_url"],
        "actions": [],
        "read_at": mark.get("read_at"),
        "seen_at": mark.get("seen_at"),
        "archived_at": mark.get("archived_at"),
        "created_at": a["feed_at"],
        "expires_at": a["ends_at"],
    }


def private_item(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "type": row.pop("type_key")}


async def feed(
    herald: Herald,
    user_id: str,
    *,
    status: str,
    category: str | None,
    archived: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    now = utcnow()
    before = decode_cursor(cursor) if cursor else None
    async with herald.db.read() as conn:
        anns: list[dict[str, Any]] = []
        if category in (None, ANNOUNCEMENT):
            anns = await _user_announcements(herald, conn, user_id, now)
            if before is not None:
                anns = [a for a in anns if (a["feed_at"], a["id"]) < before]
        rows, marks = await inbox_store.list_items(
            conn,
            user_id,
            now=now,
            status=status,
            category=category,
            archived=archived,
            before=before,
            limit=limit + 1,
            announcement_ids=[a["id"] for a in anns],
        )
    items = [private_item(r) for r in rows]
    if len(items) > limit:
        # the page is full of private items down to this key: an older announcement cannot make it
        floor = (items[-1]["created_at"], items[-1]["id"])
        anns = [a for a in anns if (a["feed_at"], a["id"]) > floor]
    taken = 0
    for a in sorted(anns, key=lambda a: (a["feed_at"], a["id"]), reverse=True):
        if taken > limit:  # newest first: limit + 1 of them are all a page can use
            break
        mark = marks.get(a["id"])
        if mark is not None:
            if mark["deleted_at"] or (mark["archived_at"] is not None) != archived:
                continue
            if status == "unread" and mark["read_at"] is not None:
                continue
        elif archived:
            continue
        if status == "read" and (mark is None or mark["read_at"] is None):
            continue
        items.append(announcement_item(a, mark))
        taken += 1
    items.sort(key=lambda i: (i["created_at"], i["id"]), reverse=True)
    page = items[:limit]
    next_cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(items) > limit else None
    return Page(page, next_cursor)


async def counts(herald: Herald, user_id: str) -> dict[str, Any]:
    now = utcnow()
    async with herald.db.read() as conn:
        anns = await _user_announcements(herald, conn, user_id, now)
        private, marks = await inbox_store.unread_and_unseen(
            conn, user_id, now=now, announcement_ids=[a["id"] for a in anns]
        )
    return counts_view(private, anns, marks)


def counts_view(
    private: Mapping[str, tuple[int, int]], anns: Sequence[dict[str, Any]], marks: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """What ``GET /v1/me/inbox/counts`` answers for one user, from their private items' (unread,
    unseen) by category, the live announcements of their audience and their marks on those, by id
    (marks are written only on a touch: none means unread and unseen)."""
    by_category = {category: n for category, (n, _) in private.items()}
    unseen = sum(u for _, u in private.values())
    unread = 0
    for a in anns:
        m = marks.get(a["id"])
        if m is None:
            unread += 1
            unseen += 1
        elif not (m["read_at"] or m["archived_at"] or m["deleted_at"]):
            unread += 1
            unseen += m["seen_at"] is None
    if unread:
        by_category[ANNOUNCEMENT] = by_category.get(ANNOUNCEMENT, 0) + unread
    full = {c: by_category.get(c, 0) for c in ("reminder", "announcement", "direct")}
    full.update(by_category)
    return {"total": sum(full.values()), "by_category": full, "unseen": unseen}


_ANN_MARKS: dict[str, dict[str, str | None]] = {
    "read": {"read_at": "now", "seen_at": "now"},
    "unread": {"read_at": None},
    "archive": {"archived_at": "now"},
    "unarchive": {"archived_at": None},
    "delete": {"deleted_at": "now"},
}


async def mark(herald: Herald, user_id: str, item_id: str, action: str) -> None:
    """read / unread / archive / unarchive / delete one item; NotFound unless it is this user's."""
    now = utcnow()
    if item_id.startswith("ann_"):
        async with herald.db.read() as conn:
            visible = {a["id"] for a in await _user_announcements(herald, conn, user_id, now)}
        if item_id not in visible:
            raise NotFound("inbox item")
        values = {k: (now if v == "now" else v) for k, v in _ANN_MARKS[action].items()}
        async with herald.db.write() as conn:
            await ann_store.set_marks(conn, user_id, [item_id], values)
        live.item_changed(herald, user_id, item_id, removed=action == "delete")
        return
    async with herald.db.write() as conn:
        before = await inbox_store.get_item(conn, user_id, item_id) if action == "read" else None
        if not await inbox_store.mark_item(conn, user_id, item_id, action, now):
            raise NotFound("inbox item")
        if before is not None and before["read_at"] is None:
            await emit_read(herald, conn, user_id, before, now)
    live.item_changed(herald, user_id, item_id, removed=action == "delete")


async def emit_read(herald: Herald, conn: Any, user_id: str, item: dict[str, Any], now: datetime) -> None:
    """``message.read`` for ``item`` (a store row, read until now), in the caller's transaction."""
    await herald.events.emit(
        conn,
        "message.read",
        {
            "item_id": item["id"],
            "notification_id": item["notification_id"],
            "user_id": user_id,
            "type": item["type_key"],
            "read_at": now.isoformat(),
        },
    )


async def get_item(herald: Herald, user_id: str, item_id: str) -> dict[str, Any]:
    now = utcnow()
    async with herald.db.read() as conn:
        if item_id.startswith("ann_"):
            for a in await _user_announcements(herald, conn, user_id, now):
                if a["id"] == item_id:
                    marks = await ann_store.marks_for(conn, user_id, [item_id])
                    if marks.get(item_id, {}).get("deleted_at"):
                        break
                    return announcement_item(a, marks.get(item_id))
            raise NotFound("inbox item")
        row = await inbox_store.get_item(conn, user_id, item_id)
    if row is None or (row["expires_at"] is not None and row["expires_at"] <= now):
        raise NotFound("inbox item")  # an expired item has left the inbox, as from the feed
    return private_item(row)


async def read_all(herald: Herald, user_id: str, category: str | None) -> int:
    now = utcnow()
    async with herald.db.read() as conn:
        anns = await _user_announcements(herald, conn, user_id, now) if category in (None, ANNOUNCEMENT) else []
        marks = await ann_store.marks_for(conn, user_id, [a["id"] for a in anns])
    unread_anns = [a["id"] for a in anns if not marks.get(a["id"], {}).get("read_at")]
    async with herald.db.write() as conn:
        n = await inbox_store.read_all(conn, user_id, now=now, category=category)
        if unread_anns:
            await ann_store.set_marks(conn, user_id, unread_anns, {"read_at": now, "seen_at": now})
    if n or unread_anns:
        live.counts_changed(herald, user_id)
    return n + len(unread_anns)


async def mark_seen(herald: Herald, user_id: str) -> int:
    """Everything in the user's inbox up to now is seen (the bell was opened): ``unseen`` drops to 0."""
    now = utcnow()
    async with herald.db.read() as conn:
        anns = await _user_announcements(herald, conn, user_id, now)
        marks = await ann_store.marks_for(conn, user_id, [a["id"] for a in anns])
    unseen_anns = [a["id"] for a in anns if not marks.get(a["id"], {}).get("seen_at")]
    async with herald.db.write() as conn:
        n = await inbox_store.mark_seen(conn, user_id, now=now)
        if unseen_anns:
            await ann_store.set_marks(conn, user_id, unseen_anns, {"seen_at": now})
    if n or unseen_anns:
        live.counts_changed(herald, user_id)
    return n + len(unseen_anns)


async def banners(herald: Herald, user_id: str) -> list[dict[str, Any]]:
    now = utcnow()
    async with herald.db.read() as conn:
        anns = [a for a in await _user_announcements(herald, conn, user_id, now) if a["kind"] == "banner"]
        marks = await ann_store.marks_for(conn, user_id, [a["id"] for a in anns])
    out = [announcement_item(a, marks.get(a["id"])) for a in anns if not marks.get(a["id"], {}).get("deleted_at")]
    out.sort(key=lambda i: (i["created_at"], i["id"]), reverse=True)
    return out
