"""Notification types and their templates (type x channel x locale)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.tables import notification_types, templates
from herald.store.types import utcnow

TYPE_FIELDS = (
    "name",
    "names",
    "category",
    "priority",
    "channels",
    "critical",
    "ttl_seconds",
    "description",
    "accounts",
    # the delivery rules (core/rules.py)
    "quiet_hours",
    "dedup_seconds",
    "caps",
    "throttle",
    "merge",
    "digest",
)


async def put_type(conn: AsyncConnection, key: str, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create or replace a type; returns it and whether it was created."""
    now = utcnow()
    existed = await get_type(conn, key) is not None
    values = {k: fields.get(k) for k in TYPE_FIELDS}
    stmt = upsert(conn, notification_types).values(key=key, created_at=now, updated_at=now, **values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[notification_types.c.key], set_={**values, "updated_at": now})
    )
    row = await get_type(conn, key)
    assert row is not None
    return row, not existed


async def get_type(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(notification_types).where(notification_types.c.key == key))).mappings().first()
    return dict(row) if row else None


async def list_types(conn: AsyncConnection, *, after: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(notification_types).order_by(notification_types.c.key).limit(limit)
    if after:
        query = query.where(notification_types.c.key > after)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def search_types(conn: AsyncConnection, text: str, *, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Types whose key or name contains ``text`` (case-insensitive; ``%`` and ``_`` match themselves)."""
    needle = text.lower()
    query = (
        select(notification_types)
        .where(
            func.lower(notification_types.c.key).contains(needle, autoescape=True)
            | func.lower(notification_types.c.name).contains(needle, autoescape=True)
        )
        .order_by(notification_types.c.key)
        .limit(limit)
    )
    if after:
        query = query.where(notification_types.c.key > after)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def delete_type(conn: AsyncConnection, key: str) -> bool:
    await conn.execute(delete(templates).where(templates.c.type_key == key))
    result = await conn.execute(delete(notification_types).where(notification_types.c.key == key))
    return result.rowcount > 0


async def put_template(
    conn: AsyncConnection, type_key: str, channel: str, locale: str, fields: dict[str, Any]
) -> dict[str, Any]:
    now = utcnow()
    stmt = upsert(conn, templates).values(
        type_key=type_key, channel=channel, locale=locale, fields=fields, updated_at=now
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[templates.c.type_key, templates.c.channel, templates.c.locale],
            set_={"fields": fields, "updated_at": now},
        )
    )
    return {"type": type_key, "channel": channel, "locale": locale, "fields": fields, "updated_at": now}


async def get_templates(conn: AsyncConnection, type_key: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{channel: {locale: fields}}`` for a type."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    rows = await conn.execute(
        select(templates.c.channel, templates.c.locale, templates.c.fields).where(templates.c.type_key == type_key)
    )
    for channel, locale, fields in rows:
        out.setdefault(channel, {})[locale] = fields
    return out


async def template_locales(conn: AsyncConnection, type_keys: list[str]) -> dict[str, dict[str, list[str]]]:
    """``{type_key: {channel: [locale, ...]}}`` for the given types, in one query (fields left out)."""
    out: dict[str, dict[str, list[str]]] = {}
    if not type_keys:
        return out
    rows = await conn.execute(
        select(templates.c.type_key, templates.c.channel, templates.c.locale)
        .where(templates.c.type_key.in_(type_keys))
        .order_by(templates.c.type_key, templates.c.channel, templates.c.locale)
    )
    for type_key, channel, locale in rows:
        out.setdefault(type_key, {}).setdefault(channel, []).append(locale)
    return out


async def delete_template(conn: AsyncConnection, type_key: str, channel: str, locale: str) -> bool:
    result = await conn.execute(
        delete(templates).where(
            templates.c.type_key == type_key, templates.c.channel == channel, templates.c.locale == locale
        )
    )
    return result.rowcount > 0
