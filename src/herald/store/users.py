"""Recipients (users): the business system's own ids, with addresses, locale, tags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.records import Profile
from herald.store import actions, direct
from herald.store.dialect import upsert
from herald.store.digests import erase_user_digests
from herald.store.preferences import erase_preferences
from herald.store.records import profile_from_row
from herald.store.tables import announcement_marks, deliveries, inbox_items, send_quotas, user_endpoints, users
from herald.store.types import utcnow

PROFILE_FIELDS = ("name", "email", "phone", "locale", "timezone", "channels", "tags", "data")


async def upsert_user(conn: AsyncConnection, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create the user, or set the given fields on it; fields not given keep their value."""
    await put_profile(conn, user_id, fields)
    user = await get_user(conn, user_id)
    assert user is not None
    return user


async def put_profile(conn: AsyncConnection, user_id: str, fields: dict[str, Any]) -> None:
    """``upsert_user`` without reading the user back (a trigger's inline profiles)."""
    now = utcnow()
    values = {k: v for k, v in fields.items() if k in PROFILE_FIELDS}
    stmt = upsert(conn, users).values(
        id=user_id,
        channels=values.pop("channels", None) or {},
        tags=values.pop("tags", None) or [],
        data=values.pop("data", None) or {},
        created_at=now,
        updated_at=now,
        **values,
    )
    update_cols = {k: stmt.excluded[k] for k in fields if k in PROFILE_FIELDS}
    update_cols["updated_at"] = stmt.excluded.updated_at
    await conn.execute(stmt.on_conflict_do_update(index_elements=[users.c.id], set_=update_cols))


async def get_user(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
    return dict(row) if row else None


async def get_users(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(user_ids), 5000):
        chunk = user_ids[start : start + 5000]
        rows = (await conn.execute(select(users).where(users.c.id.in_(chunk)))).mappings()
        out.update({row["id"]: dict(row) for row in rows})
    return out


async def ensure_users(conn: AsyncConnection, user_ids: Iterable[str]) -> None:
    """Create a bare recipient for every id not known yet."""
    now = utcnow()
    rows = [
        {"id": uid, "channels": {}, "tags": [], "data": {}, "created_at": now, "updated_at": now}
        for uid in dict.fromkeys(user_ids)
    ]
    if rows:
        await conn.execute(upsert(conn, users).on_conflict_do_nothing(index_elements=[users.c.id]), rows)


_ENSURE_AND_LOCALES = text(
    """
    WITH created AS (
        INSERT INTO users (id, channels, tags, data, created_at, updated_at)
        SELECT t.id, CAST('{}' AS jsonb), CAST('[]' AS jsonb), CAST('{}' AS jsonb), :now, :now
        FROM unnest(CAST(:ids AS text[])) AS t(id)
        ON CONFLICT (id) DO NOTHING
    )
    SELECT id, locale FROM users WHERE id = ANY(CAST(:wanted AS text[]))
    """
)


async def ensure_users_and_locales(
    conn: AsyncConnection, user_ids: Sequence[str], wanted: Sequence[str]
) -> dict[str, str | None]:
    """``ensure_users(user_ids)``, and the locale of each of ``wanted`` that existed before (a user
    created now has none). One statement on PostgreSQL (its snapshot is taken before the insert, so
    it returns the users that existed, which are the only ones with a locale)."""
    ids = list(dict.fromkeys(user_ids))
    if conn.dialect.name != "postgresql":
        await ensure_users(conn, ids)
        wanted_ids = list(dict.fromkeys(wanted))
        out: dict[str, str | None] = {}
        for start in range(0, len(wanted_ids), 5000):
            chunk = wanted_ids[start : start + 5000]
            found = await conn.execute(select(users.c.id, users.c.locale).where(users.c.id.in_(chunk)))
            out.update({uid: locale for uid, locale in found})
        return out
    # arrays: one parameter each, however many users (an IN list is bounded by the parameter limit)
    rows = await conn.execute(_ENSURE_AND_LOCALES, {"now": utcnow(), "ids": ids, "wanted": list(dict.fromkeys(wanted))})
    return {uid: locale for uid, locale in rows}


async def users_page(
    conn: AsyncConnection, *, after: str | None, limit: int, tags: list[str] | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Users in id order after ``after``, and the last id scanned (``None`` at the end).

    How audience fan-outs walk the user table in chunks; a tag filter may leave a page short.
    """
    columns = [users.c.id, users.c.locale] + ([users.c.tags] if tags else [])  # JSON decoding is not free
    query = select(*columns).order_by(users.c.id).limit(limit)
    if after is not None:
        query = query.where(users.c.id > after)
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    last = rows[-1]["id"] if len(rows) == limit else None
    if tags:
        wanted = set(tags)
        rows = [r for r in rows if wanted.intersection(r["tags"] or [])]
    return rows, last


async def erase_user(conn: AsyncConnection, user_id: str) -> bool:
    """Delete the user and everything stored for them."""
    await direct.erase_user(conn, user_id)  # their messages, conversations and blocks
    await actions.erase_user(conn, user_id)  # their answers to items' actions
    await conn.execute(delete(inbox_items).where(inbox_items.c.user_id == user_id))
    await conn.execute(delete(announcement_marks).where(announcement_marks.c.user_id == user_id))
    await conn.execute(delete(deliveries).where(deliveries.c.user_id == user_id))
    await conn.execute(delete(send_quotas).where(send_quotas.c.user_id == user_id))
    await conn.execute(delete(user_endpoints).where(user_endpoints.c.user_id == user_id))
    await erase_preferences(conn, user_id)
    await erase_user_digests(conn, user_id)  # their digests and the digests' notifications
    result = await conn.execute(delete(users).where(users.c.id == user_id))
    return result.rowcount > 0


async def profiles(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, Profile]:
    """Typed, for the worker."""
    out: dict[str, Profile] = {}
    for start in range(0, len(user_ids), 5000):
        rows = (await conn.execute(select(users).where(users.c.id.in_(user_ids[start : start + 5000])))).mappings()
        out.update({row["id"]: profile_from_row(row) for row in rows})
    return out
