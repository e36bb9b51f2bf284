"""Answers to inbox items' actions (``inbox_responses``): one per item, kept when the item goes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store import raw
from herald.store.dialect import upsert
from herald.store.tables import inbox_items, inbox_responses


@dataclass(frozen=True)
class Response:
    item_id: str
    notification_id: str | None
    user_id: str
    action: str
    reason: str | None
    at: datetime


async def record_response(conn: AsyncConnection, response: Response) -> bool:
    """Record ``response``; False when the item has an answer already (its own, or a concurrent
    one that committed first: the primary key decides, on both databases)."""
    statement = (
        upsert(conn, inbox_responses)
        .values(
            item_id=response.item_id,
            notification_id=response.notification_id,
            user_id=response.user_id,
            action=response.action,
            reason=response.reason,
            created_at=response.at,
        )
        .on_conflict_do_nothing(index_elements=["item_id"])
    )
    result = await conn.execute(statement)
    return bool(result.rowcount)


# -- the answer on an item as the inbox reads it -------------------------------------------------

RESPONSE_COLUMNS = (
    inbox_responses.c.action.label("response_action"),
    inbox_responses.c.reason.label("response_reason"),
    inbox_responses.c.created_at.label("response_at"),
)
"""Selected beside an item's columns over ``items_with_responses``; ``take_response`` folds them."""


def items_with_responses() -> Any:
    """``inbox_items`` with each item's answer, if any (a primary-key lookup per item)."""
    return inbox_items.outerjoin(inbox_responses, inbox_responses.c.item_id == inbox_items.c.id)


def take_response(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the ``RESPONSE_COLUMNS`` folded into ``response``: ``{action, reason, at}`` or None."""
    action, reason, at = row.pop("response_action"), row.pop("response_reason"), row.pop("response_at")
    row["response"] = None if action is None else {"action": action, "reason": reason, "at": at}
    return row


def feed_response_sql(postgres: bool) -> str:
    """The feed's column for an item's answer (store/inbox.py ``_feed_sql``): JSON text of
    ``[action, reason, at]`` or NULL, by the primary key, for hand-written SQL over ``inbox_items``.
    Looked up only for items with actions (an item without any cannot be answered): most items cost
    nothing."""
    fields = "r.action, r.reason, r.created_at"
    array = f"json_build_array({fields})::text" if postgres else f"json_array({fields})"
    empty = "'[]'::jsonb" if postgres else "'[]'"
    lookup = f"(SELECT {array} FROM inbox_responses AS r WHERE r.item_id = inbox_items.id)"  # noqa: S608 (constants)
    return f"CASE WHEN inbox_items.actions <> {empty} THEN {lookup} END"


def feed_response(value: str | None) -> dict[str, Any] | None:
    """``feed_response_sql``'s column as ``take_response`` gives it."""
    if value is None:
        return None
    action, reason, at = json.loads(value)
    moment = raw.read_time(at)
    return {"action": action, "reason": reason, "at": moment.astimezone(UTC) if moment is not None else None}


# -- a notification's answers (GET /v1/notifications/{id}) ---------------------------------------


async def responses_of_notification(conn: AsyncConnection, notification_id: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` answers to ``notification_id``, by user."""
    query = (
        select(inbox_responses.c.user_id, inbox_responses.c.item_id, inbox_responses.c.action,
               inbox_responses.c.reason, inbox_responses.c.created_at)
        .where(inbox_responses.c.notification_id == notification_id)
        .order_by(inbox_responses.c.user_id, inbox_responses.c.item_id)
        .limit(limit)
    )  # fmt: skip
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def count_responses(conn: AsyncConnection, notification_id: str) -> int:
    query = select(func.count()).where(inbox_responses.c.notification_id == notification_id)
    return int((await conn.execute(query)).scalar_one())


def _unanswered(notification_id: str) -> Any:
    return (
        select(inbox_items.c.user_id)
        .select_from(items_with_responses())
        .where(inbox_items.c.notification_id == notification_id, inbox_responses.c.item_id.is_(None))
    )


async def awaiting_of_notification(conn: AsyncConnection, notification_id: str, limit: int) -> list[str]:
    """The first ``limit`` recipients (by id) whose item of ``notification_id`` is unanswered."""
    query = _unanswered(notification_id).order_by(inbox_items.c.user_id).limit(limit)
    return [user_id for (user_id,) in await conn.execute(query)]


async def count_awaiting(conn: AsyncConnection, notification_id: str) -> int:
    query = select(func.count()).select_from(_unanswered(notification_id).subquery())
    return int((await conn.execute(query)).scalar_one())


async def erase_user(conn: AsyncConnection, user_id: str) -> None:
    """The user's answers go with the user (``DELETE /v1/users/{id}``)."""
    await conn.execute(delete(inbox_responses).where(inbox_responses.c.user_id == user_id))
