"""Expanding a notification into its recipients' inbox items and delivery rows (one chunk)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import Priority
from herald.core.ids import new_ids
from herald.core.locales import pick_locale
from herald.store import deliveries as delivery_store
from herald.store import inbox as inbox_store

INAPP = "inapp"


def delivery_expiry(notification: dict[str, Any], ttl_seconds: int | None) -> datetime | None:
    if notification.get("expires_at"):
        return notification["expires_at"]  # type: ignore[no-any-return]
    if ttl_seconds:
        start = notification.get("send_at") or notification["created_at"]
        return start + timedelta(seconds=ttl_seconds)  # type: ignore[no-any-return]
    return None


async def expand_chunk(
    conn: AsyncConnection,
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    *,
    now: datetime,
    default_locale: str,
    expires_at: datetime | None,
) -> int:
    """Write the inbox items and delivery rows of ``recipients`` (dicts with ``id`` and ``locale``)."""
    channels: list[str] = notification["channels"]
    rendered: dict[str, dict[str, dict[str, Any]]] = notification["rendered"]
    if not recipients:
        return 0
    if INAPP in channels:
        templates = rendered.get(INAPP, {})
        ids = new_ids("itm", len(recipients))
        items = []
        for item_id, user in zip(ids, recipients, strict=True):
            locale = pick_locale(templates.keys(), user.get("locale"), default_locale)
            content = templates[locale] if locale else {}
            items.append(
                {
                    "id": item_id,
                    "user_id": user["id"],
                    "notification_id": notification["id"],
                    "type_key": notification["type_key"],
                    "category": notification["category"],
                    "title": content.get("title") or notification["type_key"],
                    "summary": content.get("summary"),
                    "body": content.get("body"),
                    "data": notification["data"],
                    "actor": notification["actor"],
                    "target": notification["target"],
                    "action_url": content.get("action_url"),
                    "actions": content.get("actions") or [],
                    "read_at": None,
                    "seen_at": None,
                    "archived_at": None,
                    "created_at": now,
                    "expires_at": expires_at,
                }
            )
        await inbox_store.insert_items(conn, items)
    other = [c for c in channels if c != INAPP]
    if other:
        rank = Priority(notification["priority"]).rank
        ids = new_ids("dlv", len(recipients) * len(other))
        rows = []
        i = 0
        for user in recipients:
            for channel in other:
                rows.append(
                    {
                        "id": ids[i],
                        "notification_id": notification["id"],
                        "user_id": user["id"],
                        "channel": channel,
                        "account": None,
                        "status": "pending",
                        "reason": None,
                        "priority": rank,
                        "attempts": 0,
                        "last_error": None,
                        "provider_message_id": None,
                        "next_attempt_at": now,
                        "lease_until": None,
                        "lease_owner": None,
                        "expires_at": expires_at,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                i += 1
        await delivery_store.insert_deliveries(conn, rows)
    return len(recipients)
