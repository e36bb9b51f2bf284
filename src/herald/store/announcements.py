"""Announcements: one public row each, plus per-user marks only for users who touched one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store import raw
from herald.store.dialect import upsert
from herald.store.tables import announcement_marks, announcements


async def create_announcement(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(announcements).values(**row))


async def get_announcement(conn: AsyncConnection, ann_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(announcements).where(announcements.c.id == ann_id))).mappings().first()
    return dict(row) if row else None


async def update_announcement(conn: AsyncConnection, ann_id: str, values: dict[str, Any]) -> bool:
    result = await conn.execute(update(announcements).where(announcements.c.id == ann_id).values(**values))
    return result.rowcount > 0


async def delete_announcement(conn: AsyncConnection, ann_id: str) -> bool:
    await conn.execute(delete(announcement_marks).where(announcement_marks.c.announcement_id == ann_id))
    result = await conn.execute(delete(announcements).where(announcements.c.id == ann_id))
    return result.rowcount > 0


async def list_announcements(
    conn: AsyncConnection, *, before: tuple[datetime, str] | None, limit: int, kind: str | None = None
) -> list[dict[str, Any]]:
    query = select(announcements)
    if kind:
        query = query.where(announcements.c.kind == kind)
    if before is not None:
        query = query.where(tuple_(announcements.c.created_at, announcements.c.id) < tuple_(*before))
    query = query.order_by(announcements.c.created_at.desc(), announcements.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def live_announcements(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Every announcement not yet ended (including those that start later): what the cache holds."""
    query = select(announcements).where(or_(announcements.c.ends_at.is_(None), announcements.c.ends_at > now))
    return [dict(r) for r in (await conn.execute(query)).mappings()]


MARK_TIMES = ("read_at", "seen_at", "archived_at", "deleted_at")


def marks_where(postgres: bool, user: str, ids: str) -> str:
    """The WHERE of a user's marks on a list of announcements (parameters ``user``, ``ids``: ``raw.text_list``)."""
    return f"user_id = {user} AND announcement_id {raw.any_of(postgres, ids)}"


def mark_row(user_id: str, announcement_id: str, times: Sequence[Any]) -> dict[str, Any]:
    """A mark read by a raw statement, its ``MARK_TIMES`` in that order, as ``marks_for`` gives it."""
    row: dict[str, Any] = {"user_id": user_id, "announcement_id": announcement_id}
    row.update(zip(MARK_TIMES, (raw.read_time(t) for t in times), strict=True))
    return row


async def marks_for(conn: AsyncConnection, user_id: str, ann_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """This user's marks on these announcements (every inbox read asks), keyed by announcement id:
    ``{"read_at", "seen_at", "archived_at", "deleted_at"}``, aware datetimes or None."""
    if not ann_ids:
        return {}
    postgres = conn.dialect.name == "postgresql"
    user, ids = ("$1", "$2") if postgres else ("?1", "?2")
    sql = f"SELECT announcement_id, {', '.join(MARK_TIMES)} FROM announcement_marks "  # noqa: S608 (constants only)
    sql += f"WHERE {marks_where(postgres, user, ids)}"
    rows = await raw.fetch(conn, sql, [user_id, raw.text_list(postgres, ann_ids)])
    return {row[0]: mark_row(user_id, row[0], row[1:]) for row in rows}


async def set_marks(conn: AsyncConnection, user_id: str, ann_ids: Sequence[str], values: dict[str, Any]) -> None:
    """Set mark columns (read_at, archived_at, deleted_at, ...) for this user on these announcements."""
    if not ann_ids:
        return
    base = {"read_at": None, "seen_at": None, "archived_at": None, "deleted_at": None}
    rows = [{**base, **values, "user_id": user_id, "announcement_id": a} for a in ann_ids]
    stmt = upsert(conn, announcement_marks)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[announcement_marks.c.user_id, announcement_marks.c.announcement_id],
            set_={k: stmt.excluded[k] for k in values},
        ),
        rows,
    )


async def marks_for_users(
    conn: AsyncConnection, user_ids: Sequence[str], ann_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Marks of many users on these announcements, keyed ``(user_id, announcement_id)``: what the
    realtime streams of one process need when an announcement changes (one statement, not one per user)."""
    if not user_ids or not ann_ids:
        return {}
    rows = await conn.execute(
        select(announcement_marks).where(
            announcement_marks.c.user_id.in_(list(user_ids)), announcement_marks.c.announcement_id.in_(list(ann_ids))
        )
    )
    return {(r["user_id"], r["announcement_id"]): dict(r) for r in rows.mappings()}
