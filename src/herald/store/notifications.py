"""Notifications: what was triggered, with its rendered templates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.records import Notification
from herald.store.tables import notifications


async def insert_notification(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(notifications).values(**row))


async def get_notification(conn: AsyncConnection, notification_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(notifications).where(notifications.c.id == notification_id))).mappings().first()
    return dict(row) if row else None


async def get_notifications(conn: AsyncConnection, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = await conn.execute(select(notifications).where(notifications.c.id.in_(ids)))
    return {r["id"]: dict(r) for r in rows.mappings()}


async def set_notification_status(conn: AsyncConnection, notification_id: str, status: str, now: Any) -> bool:
    result = await conn.execute(
        update(notifications).where(notifications.c.id == notification_id).values(status=status, updated_at=now)
    )
    return result.rowcount > 0


async def mark_processed(conn: AsyncConnection, notification_id: str, recipients: int, now: Any) -> None:
    """Fan-out finished: record the final recipient count, unless the sender cancelled meanwhile."""
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id, notifications.c.status != "cancelled")
        .values(status="processed", recipients=recipients, updated_at=now)
    )


async def notifications_by_id(conn: AsyncConnection, ids: list[str]) -> dict[str, Notification]:
    """Typed, for the worker."""
    if not ids:
        return {}
    rows = await conn.execute(select(notifications).where(notifications.c.id.in_(ids)))
    return {r["id"]: Notification.from_row(r) for r in rows.mappings()}
