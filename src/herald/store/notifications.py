"""Notifications: what was triggered, with its rendered templates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store import users as user_store
from herald.store.records import Notification
from herald.store.tables import inbox_items, notifications
from herald.store.types import utcnow

NOTIFICATION_JSON = ("channels", "data", "actor", "target", "rendered", "audience", "accounts")


async def insert_notification(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(notifications), row)


@dataclass
class InboxWrite:
    """The in-app items of one or more notifications, each content stored once: per notification
    its shared columns, per distinct content (a locale's rendering, or a recipient's own) a variant,
    per item its id, user and the indexes of its notification and variant."""

    shared: list[dict[str, Any]] = field(default_factory=list)
    """notification_id, type_key, category, data, actor, target, created_at, expires_at"""
    variants: list[dict[str, Any]] = field(default_factory=list)
    """title, summary, body, action_url, actions"""
    ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    notification_of: list[int] = field(default_factory=list)
    variant_of: list[int] = field(default_factory=list)


# One statement for a whole trigger (or batch of triggers) on PostgreSQL: the recipients that are
# new, the notification rows and their inbox items; the rows travel as arrays (one parameter each,
# whatever the count), items refer to their notification and content by position.
_ACCEPT = text(
    """
    WITH new_users AS (
        INSERT INTO users (id, channels, tags, data, created_at, updated_at)
        SELECT u.id, CAST('{}' AS jsonb), CAST('[]' AS jsonb), CAST('{}' AS jsonb), :now, :now
        FROM unnest(CAST(:user_ids AS text[])) AS u(id)
        ON CONFLICT (id) DO NOTHING
    ), new_notifications AS (
        INSERT INTO notifications (id, type_key, category, priority, status, channels, data, actor, target,
                                   rendered, audience, accounts, recipients, send_at, expires_at,
                                   created_at, updated_at, cancellation_key, schedule_id, occurrence_at)
        SELECT n.id, n.type_key, n.category, n.priority, n.status, CAST(n.channels AS jsonb),
               CAST(n.data AS jsonb), CAST(n.actor AS jsonb), CAST(n.target AS jsonb),
               CAST(n.rendered AS jsonb), CAST(n.audience AS jsonb), CAST(n.accounts AS jsonb),
               n.recipients, n.send_at, n.expires_at, n.created_at, n.updated_at, n.cancellation_key,
               n.schedule_id, n.occurrence_at
        FROM unnest(CAST(:n_id AS text[]), CAST(:n_type_key AS text[]), CAST(:n_category AS text[]),
                    CAST(:n_priority AS text[]), CAST(:n_status AS text[]), CAST(:n_channels AS text[]),
                    CAST(:n_data AS text[]), CAST(:n_actor AS text[]), CAST(:n_target AS text[]),
                    CAST(:n_rendered AS text[]), CAST(:n_audience AS text[]), CAST(:n_accounts AS text[]),
                    CAST(:n_recipients AS int[]), CAST(:n_send_at AS timestamptz[]),
                    CAST(:n_expires_at AS timestamptz[]), CAST(:n_created_at AS timestamptz[]),
                    CAST(:n_updated_at AS timestamptz[]), CAST(:n_cancellation_key AS text[]),
                    CAST(:n_schedule_id AS text[]), CAST(:n_occurrence_at AS timestamptz[]))
             AS n(id, type_key, category, priority, status, channels, data, actor, target, rendered, audience,
                  accounts, recipients, send_at, expires_at, created_at, updated_at, cancellation_key,
                  schedule_id, occurrence_at)
    )
    INSERT INTO inbox_items (id, user_id, notification_id, type_key, category, title, summary, body, data, actor,
                             target, action_url, actions, read_at, seen_at, archived_at, created_at, expires_at)
    SELECT i.id, i.user_id, s.notification_id, s.type_key, s.category, v.title, v.summary, v.body,
           CAST(s.data AS jsonb), CAST(s.actor AS jsonb), CAST(s.target AS jsonb), v.action_url,
           CAST(v.actions AS jsonb), NULL, NULL, NULL, s.created_at, s.expires_at
    FROM unnest(CAST(:i_id AS text[]), CAST(:i_user_id AS text[]), CAST(:i_notification AS int[]),
                CAST(:i_variant AS int[])) AS i(id, user_id, s_ord, v_ord)
    JOIN unnest(CAST(:s_notification_id AS text[]), CAST(:s_type_key AS text[]), CAST(:s_category AS text[]),
                CAST(:s_data AS text[]), CAST(:s_actor AS text[]), CAST(:s_target AS text[]),
                CAST(:s_created_at AS timestamptz[]), CAST(:s_expires_at AS timestamptz[]))
         WITH ORDINALITY AS s(notification_id, type_key, category, data, actor, target, created_at, expires_at, ord)
         ON s.ord = i.s_ord
    JOIN unnest(CAST(:v_title AS text[]), CAST(:v_summary AS text[]), CAST(:v_body AS text[]),
                CAST(:v_action_url AS text[]), CAST(:v_actions AS text[]))
         WITH ORDINALITY AS v(title, summary, body, action_url, actions, ord)
         ON v.ord = i.v_ord
    """
)
_NOTIFICATION_COLUMNS = (
    "id", "type_key", "category", "priority", "status", "channels", "data", "actor", "target", "rendered",
    "audience", "accounts", "recipients", "send_at", "expires_at", "created_at", "updated_at",
    "cancellation_key", "schedule_id", "occurrence_at",
)  # fmt: skip
_SHARED_COLUMNS = ("notification_id", "type_key", "category", "data", "actor", "target", "created_at", "expires_at")
_SHARED_JSON = ("data", "actor", "target")
_VARIANT_COLUMNS = ("title", "summary", "body", "action_url", "actions")


async def insert_accepted(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    items: InboxWrite | None = None,
    *,
    ensure_users: Sequence[str] = (),
) -> None:
    """Notification ``rows``, their in-app ``items``, and a bare user for each id of
    ``ensure_users`` not known yet: one statement on PostgreSQL, three on SQLite."""
    items = items or InboxWrite()
    if conn.dialect.name == "postgresql":
        await conn.execute(_ACCEPT, _accept_params(rows, items, ensure_users))
        return
    if ensure_users:
        await user_store.ensure_users(conn, ensure_users)
    if rows:
        await conn.execute(insert(notifications), list(rows))
    if items.ids:
        await conn.execute(insert(inbox_items), _item_rows(items))


def _accept_params(rows: Sequence[dict[str, Any]], items: InboxWrite, ensure_users: Sequence[str]) -> dict[str, Any]:
    encoded: dict[int, str] = {}

    def dumps(value: Any) -> str:
        """JSON text, once per object: an item's data is its notification's (the same dict)."""
        if value is None:
            return "null"
        text = encoded.get(id(value))  # the objects outlive this call: an id is not reused meanwhile
        if text is None:
            text = encoded[id(value)] = json.dumps(value)
        return text

    params: dict[str, Any] = {"now": utcnow(), "user_ids": list(dict.fromkeys(ensure_users))}
    for column in _NOTIFICATION_COLUMNS:
        if column in NOTIFICATION_JSON:
            params[f"n_{column}"] = [dumps(r[column]) for r in rows]
        else:
            params[f"n_{column}"] = [r[column] for r in rows]
    for column in _SHARED_COLUMNS:
        if column in _SHARED_JSON:
            params[f"s_{column}"] = [dumps(s[column]) for s in items.shared]
        else:
            params[f"s_{column}"] = [s[column] for s in items.shared]
    for column in _VARIANT_COLUMNS:
        if column == "actions":
            params["v_actions"] = [dumps(v["actions"]) for v in items.variants]
        else:
            params[f"v_{column}"] = [v[column] for v in items.variants]
    params["i_id"] = items.ids
    params["i_user_id"] = items.user_ids
    params["i_notification"] = [n + 1 for n in items.notification_of]  # ordinality counts from 1
    params["i_variant"] = [v + 1 for v in items.variant_of]
    return params


def _item_rows(items: InboxWrite) -> list[dict[str, Any]]:
    unread = {"read_at": None, "seen_at": None, "archived_at": None}
    return [
        {**items.shared[n], **items.variants[v], "id": item_id, "user_id": user_id, **unread}
        for item_id, user_id, n, v in zip(
            items.ids, items.user_ids, items.notification_of, items.variant_of, strict=True
        )
    ]


async def get_notification(conn: AsyncConnection, notification_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(notifications).where(notifications.c.id == notification_id))).mappings().first()
    return dict(row) if row else None


async def lock_status(conn: AsyncConnection, notification_id: str) -> str | None:
    """The notification's status, its row share-locked until the transaction ends (PostgreSQL;
    SQLite's one writer needs no lock): a cancel, which updates the row, waits for a fan-out chunk
    holding it and the chunk sees a cancel committed before it (store/cancellation.py)."""
    query = select(notifications.c.status).where(notifications.c.id == notification_id).with_for_update(read=True)
    status = (await conn.execute(query)).scalar()
    return str(status) if status is not None else None


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
