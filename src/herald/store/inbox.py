"""Private inbox items: bulk insert, the feed query, unread counts from the partial index, marks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.rawjson import stored_json
from herald.store import actions as action_store
from herald.store import announcements as ann_store
from herald.store import raw
from herald.store.tables import inbox_items
from herald.store.types import UTCDateTime

MERGE_TARGET_COLUMNS = ("merge_key", "merge_until")
"""Whether and until when an item is a merge target (store/merge.py): never shown."""
ITEM_COLUMNS = [c for c in inbox_items.c if c.name != "user_id" and c.name not in MERGE_TARGET_COLUMNS]


async def insert_items(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(inbox_items), list(rows))


def unexpired(now: datetime) -> Any:
    """Items still in the inbox at ``now``: those past their ``expires_at`` have left it."""
    return or_(inbox_items.c.expires_at.is_(None), inbox_items.c.expires_at > now)


def _visible() -> Any:
    return and_(
        inbox_items.c.user_id == bindparam("user_id"),
        or_(inbox_items.c.expires_at.is_(None), inbox_items.c.expires_at > bindparam("now", type_=UTCDateTime)),
    )


_JSON_COLUMNS = frozenset({"data", "actor", "target", "actions", "actors"})
_TIME_COLUMNS = frozenset({"read_at", "seen_at", "archived_at", "created_at", "expires_at"})
FEED_COLUMNS = tuple(c.name for c in ITEM_COLUMNS)
_FEED_FIELDS = (*FEED_COLUMNS, "response")
"""What a feed row holds: the item's columns, then its answer (``store.actions.feed_response_sql``)."""


@lru_cache(maxsize=128)
def _feed_sql(
    postgres: bool, status: str, by_category: bool, archived: bool, after_cursor: bool, with_marks: bool
) -> str:
    """The feed statement for one combination of filters, as text for the driver: the inbox is the
    hottest read path (``store.raw``). JSON columns come back as text, passed through (``core.rawjson``).
    ``with_marks``: the user's marks on the given announcements come in the same round trip, as rows
    whose ``type_key`` is NULL (``deleted_at`` in the ``created_at`` column)."""
    params = iter(f"${n}" if postgres else f"?{n}" for n in range(1, 9))
    user, now = next(params), next(params)
    columns = ", ".join(f"{c}::text" if postgres and c in _JSON_COLUMNS else c for c in FEED_COLUMNS)
    columns += f", {action_store.feed_response_sql(postgres)}"
    where = [f"user_id = {user}", f"(expires_at IS NULL OR expires_at > {now})"]
    where.append("archived_at IS NOT NULL" if archived else "archived_at IS NULL")
    if status == "unread":
        where.append("read_at IS NULL")
    elif status == "read":
        where.append("read_at IS NOT NULL")
    if by_category:
        where.append(f"category = {next(params)}")
    if after_cursor:
        # a row-value comparison, so the index range scan starts at the cursor
        where.append(f"(created_at, id) < ({next(params)}, {next(params)})")
    page = (
        f"SELECT {columns} FROM inbox_items WHERE {' AND '.join(where)} "  # noqa: S608 (constants only)
        f"ORDER BY created_at DESC, id DESC LIMIT {next(params)}"
    )
    if not with_marks:
        return page
    nulls = ", ".join(["NULL"] * 11)
    after = ", ".join(["NULL"] * (len(_FEED_FIELDS) - 16))  # expires_at and every field after it
    return (
        f"SELECT * FROM ({page}) AS page UNION ALL "  # noqa: S608 (constants only)
        f"SELECT announcement_id, {nulls}, {', '.join(ann_store.MARK_TIMES)}, {after} "
        f"FROM announcement_marks WHERE {ann_store.marks_where(postgres, user, next(params))}"
    )


async def list_items(
    conn: AsyncConnection,
    user_id: str,
    *,
    now: datetime,
    status: str = "all",
    category: str | None = None,
    archived: bool = False,
    before: tuple[datetime, str] | None = None,
    limit: int = 20,
    announcement_ids: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Newest first by (created_at, id), strictly before the cursor key, and the user's marks on
    ``announcement_ids`` (as ``store.announcements.marks_for`` gives them), in one round trip. JSON
    columns are ``core.rawjson.stored_json`` values: ``RawJSON`` for output with ``rawjson.dumps``."""
    postgres = conn.dialect.name == "postgresql"
    sql = _feed_sql(postgres, status, bool(category), archived, before is not None, bool(announcement_ids))
    at: Any = (lambda t: t) if postgres else raw.sqlite_time
    args: list[Any] = [user_id, at(now)]
    if category:
        args.append(category)
    if before is not None:
        args += [at(before[0]), before[1]]
    args.append(limit)
    if announcement_ids:
        args.append(raw.text_list(postgres, announcement_ids))
    items, marks = [], {}
    for row in await raw.fetch(conn, sql, args):
        if row[2] is None:  # type_key: a mark
            marks[row[0]] = ann_store.mark_row(user_id, row[0], row[12:16])
            continue
        item = dict(zip(_FEED_FIELDS, row, strict=True))
        for column in _JSON_COLUMNS:
            item[column] = stored_json(item[column])
        item["response"] = action_store.feed_response(item["response"])
        if not postgres:  # asyncpg returns aware datetimes already; SQLite returns text
            for column in _TIME_COLUMNS:
                item[column] = raw.read_time(item[column])
        items.append(item)
    return items, marks


@lru_cache(maxsize=4)
def _counts_sql(postgres: bool, with_marks: bool) -> str:
    """Unread and unseen by category from the unread index alone (``with_marks``: and, in the same
    round trip, the user's marks on the given announcements, as rows whose count is NULL)."""
    user, now, ids = ("$1", "$2", "$3") if postgres else ("?1", "?2", "?3")
    unseen = "sum(CASE WHEN seen_at IS NULL THEN 1 ELSE 0 END)"
    no_time = "NULL::timestamptz" if postgres else "NULL"
    sql = (
        f"SELECT category, count(*), {unseen}, {', '.join([no_time] * 4)} FROM inbox_items "  # noqa: S608 (constants only)
        f"WHERE user_id = {user} AND read_at IS NULL AND archived_at IS NULL "
        f"AND (expires_at IS NULL OR expires_at > {now}) GROUP BY category"
    )
    if with_marks:
        sql += (
            f" UNION ALL SELECT announcement_id, NULL, NULL, {', '.join(ann_store.MARK_TIMES)} "  # noqa: S608
            f"FROM announcement_marks WHERE {ann_store.marks_where(postgres, user, ids)}"
        )
    return sql


async def unread_and_unseen(
    conn: AsyncConnection, user_id: str, *, now: datetime, announcement_ids: Sequence[str] = ()
) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, Any]]]:
    """``{category: (unread, unseen)}`` of one user (categories without an unread item absent), and
    the user's marks on ``announcement_ids`` as ``store.announcements.marks_for`` gives them: one
    statement, one round trip."""
    postgres = conn.dialect.name == "postgresql"
    args: list[Any] = [user_id, now if postgres else raw.sqlite_time(now)]
    if announcement_ids:
        args.append(raw.text_list(postgres, announcement_ids))
    sql = _counts_sql(postgres, bool(announcement_ids))
    counts: dict[str, tuple[int, int]] = {}
    marks: dict[str, dict[str, Any]] = {}
    for key, n, unseen, *times in await raw.fetch(conn, sql, args):
        if n is not None:
            counts[key] = (int(n), int(unseen or 0))
        else:
            marks[key] = ann_store.mark_row(user_id, key, times)
    return counts, marks


_MARKS = {
    "read": ("read_at", True),
    "unread": ("read_at", False),
    "archive": ("archived_at", True),
    "unarchive": ("archived_at", False),
}


async def mark_item(conn: AsyncConnection, user_id: str, item_id: str, action: str, now: datetime) -> bool:
    """Apply read/unread/archive/unarchive/delete to the user's own item; False if it is not theirs
    or has expired (an expired item has left the inbox: it is not there to mark)."""
    owned = and_(inbox_items.c.id == item_id, inbox_items.c.user_id == user_id, unexpired(now))
    if action == "delete":
        result = await conn.execute(delete(inbox_items).where(owned))
        return result.rowcount > 0
    column, setting = _MARKS[action]
    value: Any = func.coalesce(inbox_items.c[column], now) if setting else None
    values = {column: value}
    if action == "read":
        values["seen_at"] = func.coalesce(inbox_items.c.seen_at, now)
    if action in ("read", "archive"):  # no longer a merge target: the next event makes a new item
        values.update(merge_key=None, merge_until=None)
    result = await conn.execute(update(inbox_items).where(owned).values(**values))
    return result.rowcount > 0


async def get_item(conn: AsyncConnection, user_id: str, item_id: str) -> dict[str, Any] | None:
    """The user's item with its ``response`` (the user's answer to its actions, or None)."""
    query = (
        select(*ITEM_COLUMNS, *action_store.RESPONSE_COLUMNS)
        .select_from(action_store.items_with_responses())
        .where(inbox_items.c.id == item_id, inbox_items.c.user_id == user_id)
    )
    row = (await conn.execute(query)).mappings().first()
    return action_store.take_response(dict(row)) if row else None


async def read_all(conn: AsyncConnection, user_id: str, *, now: datetime, category: str | None = None) -> int:
    cond = [inbox_items.c.user_id == user_id, inbox_items.c.read_at.is_(None), inbox_items.c.archived_at.is_(None)]
    if category:
        cond.append(inbox_items.c.category == category)
    result = await conn.execute(
        update(inbox_items)
        .where(*cond)
        .values(read_at=now, seen_at=func.coalesce(inbox_items.c.seen_at, now), merge_key=None, merge_until=None)
    )
    return int(result.rowcount)


async def items_of_notification(conn: AsyncConnection, notification_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(inbox_items.c.id, inbox_items.c.user_id, inbox_items.c.created_at, inbox_items.c.read_at)
        .where(inbox_items.c.notification_id == notification_id)
        .order_by(inbox_items.c.user_id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def count_items_of_notification(conn: AsyncConnection, notification_id: str) -> int:
    query = select(func.count()).select_from(inbox_items).where(inbox_items.c.notification_id == notification_id)
    return int((await conn.execute(query)).scalar_one())


# PostgreSQL: one statement per chunk that ships only what differs per row (id, user, which
# rendered variant); the shared columns are sent once. Several times faster than executemany,
# which serialises every JSON column of every row on the client.
_FANOUT_INSERT = text(
    """
    INSERT INTO inbox_items (id, user_id, notification_id, type_key, category, title, summary, body,
                             data, actor, target, action_url, actions, read_at, seen_at, archived_at,
                             created_at, expires_at)
    SELECT t.id, t.user_id, :notification_id, :type_key, :category,
           (CAST(:titles AS text[]))[t.v], (CAST(:summaries AS text[]))[t.v], (CAST(:bodies AS text[]))[t.v],
           CAST(:data AS jsonb), CAST(:actor AS jsonb), CAST(:target AS jsonb),
           (CAST(:action_urls AS text[]))[t.v], CAST((CAST(:actions AS text[]))[t.v] AS jsonb),
           NULL, NULL, NULL, CAST(:created_at AS timestamptz), CAST(:expires_at AS timestamptz)
    FROM unnest(CAST(:ids AS text[]), CAST(:user_ids AS text[]), CAST(:variants AS int[])) AS t(id, user_id, v)
    """
)


async def insert_notification_items(
    conn: AsyncConnection,
    *,
    shared: dict[str, Any],
    variants: Sequence[dict[str, Any]],
    ids: Sequence[str],
    user_ids: Sequence[str],
    variant_of: Sequence[int],
) -> None:
    """One notification's inbox items: ``shared`` columns are the same for every row, each row's
    title/summary/body/action_url/actions come from ``variants[variant_of[i]]`` (one per locale)."""
    if not ids:
        return
    if conn.dialect.name != "postgresql":
        rows = [
            {
                **shared,
                **variants[v],
                "id": item_id,
                "user_id": user_id,
                "read_at": None,
                "seen_at": None,
                "archived_at": None,
            }
            for item_id, user_id, v in zip(ids, user_ids, variant_of, strict=True)
        ]
        await insert_items(conn, rows)
        return
    await conn.execute(
        _FANOUT_INSERT,
        {
            "notification_id": shared["notification_id"],
            "type_key": shared["type_key"],
            "category": shared["category"],
            "titles": [v["title"] for v in variants],
            "summaries": [v["summary"] for v in variants],
            "bodies": [v["body"] for v in variants],
            "action_urls": [v["action_url"] for v in variants],
            "actions": [json.dumps(v["actions"]) for v in variants],
            "data": json.dumps(shared["data"]),
            "actor": json.dumps(shared["actor"]),
            "target": json.dumps(shared["target"]),
            "created_at": shared["created_at"],
            "expires_at": shared["expires_at"],
            "ids": list(ids),
            "user_ids": list(user_ids),
            "variants": [v + 1 for v in variant_of],  # PostgreSQL arrays start at 1
        },
    )


# -- realtime (engine/streams.py): what open streams need, for many users at once ---------------


async def items_of_chunk(
    conn: AsyncConnection, notification_id: str, created_at: datetime, user_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The items one fan-out chunk (or inline trigger) wrote for ``user_ids``: they share the
    notification and the ``created_at`` of the chunk, so the feed index finds each user's row."""
    if not user_ids:
        return []
    query = select(*ITEM_COLUMNS, inbox_items.c.user_id).where(
        inbox_items.c.user_id.in_(list(user_ids)),
        inbox_items.c.created_at == created_at,
        inbox_items.c.notification_id == notification_id,
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def items_since(
    conn: AsyncConnection, user_id: str, *, since: datetime, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The user's visible items created at or after ``since``, newest first, at most ``limit``."""
    query = (
        select(*ITEM_COLUMNS, *action_store.RESPONSE_COLUMNS)
        .select_from(action_store.items_with_responses())
        .where(_visible(), inbox_items.c.created_at >= bindparam("since", type_=UTCDateTime))
        .order_by(inbox_items.c.created_at.desc(), inbox_items.c.id.desc())
        .limit(limit)
    )
    rows = await conn.execute(query, {"user_id": user_id, "now": now, "since": since})
    return [action_store.take_response(dict(r)) for r in rows.mappings()]


def _unread_of(users: Any, now: datetime) -> Any:
    return and_(
        users,
        inbox_items.c.read_at.is_(None),
        inbox_items.c.archived_at.is_(None),
        or_(inbox_items.c.expires_at.is_(None), inbox_items.c.expires_at > now),
    )


async def unread_and_unseen_counts(
    conn: AsyncConnection, user_ids: Sequence[str], *, now: datetime
) -> dict[str, dict[str, tuple[int, int]]]:
    """``{user: {category: (unread, unseen)}}`` for many users in one statement (users without an
    unread item are absent)."""
    if not user_ids:
        return {}
    unseen = func.sum(case((inbox_items.c.seen_at.is_(None), 1), else_=0))
    query = (
        select(inbox_items.c.user_id, inbox_items.c.category, func.count(), unseen)
        .where(_unread_of(inbox_items.c.user_id.in_(list(user_ids)), now))
        .group_by(inbox_items.c.user_id, inbox_items.c.category)
    )
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for user_id, category, n, n_unseen in await conn.execute(query):
        out.setdefault(user_id, {})[category] = (int(n), int(n_unseen or 0))
    return out


async def mark_seen(conn: AsyncConnection, user_id: str, *, now: datetime) -> int:
    """Every unread item of the user not yet seen is seen now (read items are seen already)."""
    result = await conn.execute(
        update(inbox_items)
        .where(_unread_of(inbox_items.c.user_id == user_id, now), inbox_items.c.seen_at.is_(None))
        .values(seen_at=now)
    )
    return int(result.rowcount)


# -- expiry, for open streams (engine/inbox_expiry.py): from the unread index alone -------------------


def _unread_of_user(user_id: str) -> Any:
    return and_(inbox_items.c.user_id == user_id, inbox_items.c.read_at.is_(None), inbox_items.c.archived_at.is_(None))


async def next_unread_expiry(conn: AsyncConnection, user_id: str, *, after: datetime) -> datetime | None:
    """When the user's next unread item expires (the first ``expires_at`` after ``after``), if any."""
    query = select(func.min(inbox_items.c.expires_at)).where(_unread_of_user(user_id), inbox_items.c.expires_at > after)
    value = (await conn.execute(query)).scalar()
    return value if isinstance(value, datetime) else None


async def unread_expired(conn: AsyncConnection, user_id: str, *, after: datetime, until: datetime) -> list[str]:
    """The user's unread items that expired in (``after``, ``until``]."""
    query = select(inbox_items.c.id).where(
        _unread_of_user(user_id), inbox_items.c.expires_at > after, inbox_items.c.expires_at <= until
    )
    return [r[0] for r in await conn.execute(query.order_by(inbox_items.c.expires_at).limit(1000))]
