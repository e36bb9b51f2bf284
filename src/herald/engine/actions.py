"""Answering an inbox item's actions (confirm / decline with a reason), and a notification's answers.

An answer is recorded, its item marked read, and the ``message.action`` event (with ``message.read``
when the item was unread) queued for the business system, all in one transaction; the user's open
streams hear ``inbox.updated`` after the commit. One answer per item: a second one, any action, is a
conflict, decided by the answer table's primary key when two arrive at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.actions import checked_reason, find_action, has_answerable_actions
from herald.core.errors import Conflict, NotFound
from herald.engine import inbox, live
from herald.engine.service import Herald
from herald.store import actions as action_store
from herald.store import inbox as inbox_store
from herald.store.actions import Response
from herald.store.types import utcnow

ACTION_EVENT = "message.action"
RESPONSE_LIST_CAP = 1000
"""Answers, and recipients still to answer, that a notification's status lists (each has a total)."""


@dataclass(frozen=True)
class Answered:
    response: Response
    item: dict[str, Any]
    """The item after the answer (read, carrying its ``response``), as ``engine.inbox.get_item`` gives it."""


def _already(response: dict[str, Any]) -> Conflict:
    return Conflict(f"this item was answered already ('{response['action']}' at {response['at'].isoformat()})")


async def answer_item(herald: Herald, user_id: str, item_id: str, action_id: str, reason: str | None) -> Answered:
    """Record ``user_id``'s answer ``action_id`` to their item ``item_id``. NotFound: no such item of
    theirs (announcements, expired items included), or no such action on it; Conflict: answered
    already; Invalid naming ``reason``: the action requires one."""
    now = utcnow()
    if item_id.startswith("ann_"):  # announcements carry no actions
        raise NotFound("inbox item")
    async with herald.db.write() as conn:
        item = await inbox_store.get_item(conn, user_id, item_id)
        if item is None or (item["expires_at"] is not None and item["expires_at"] <= now):
            raise NotFound("inbox item")
        action = find_action(item["actions"], action_id)
        if item["response"] is not None:
            raise _already(item["response"])
        response = Response(item_id, item["notification_id"], user_id, action_id, checked_reason(action, reason), now)
        if not await action_store.record_response(conn, response):
            raise Conflict("this item was answered already")
        await _mark_read(herald, conn, user_id, item, now)
        await herald.events.emit(conn, ACTION_EVENT, _event_data(response, item["type_key"]))
        after = await inbox_store.get_item(conn, user_id, item_id)
    assert after is not None  # written in this transaction
    live.item_changed(herald, user_id, item_id)
    return Answered(response, inbox.private_item(after))


async def _mark_read(herald: Herald, conn: AsyncConnection, user_id: str, item: dict[str, Any], now: datetime) -> None:
    """Answering is reading: an unread item becomes read (and ``message.read`` is sent, as for a click)."""
    if item["read_at"] is None and await inbox_store.mark_item(conn, user_id, item["id"], "read", now):
        await inbox.emit_read(herald, conn, user_id, item, now)


def _event_data(response: Response, type_key: str) -> dict[str, Any]:
    return {
        "notification_id": response.notification_id,
        "item_id": response.item_id,
        "user_id": response.user_id,
        "type": type_key,
        "action": response.action,
        "reason": response.reason,
        "at": response.at.isoformat(),
    }


def answer_json(answered: Answered, item_view: dict[str, Any]) -> dict[str, Any]:
    """The answer as ``POST /v1/me/inbox/{item_id}/actions/{action_id}`` returns it."""
    r = answered.response
    return {
        "item_id": r.item_id,
        "notification_id": r.notification_id,
        "action": r.action,
        "reason": r.reason,
        "at": r.at.isoformat(),
        "item": item_view,
    }


async def notification_answers(conn: AsyncConnection, notification: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /v1/notifications/{id}`` says about answers: ``responses`` and ``awaiting`` (the
    recipients whose item is there and unanswered), each the first ``RESPONSE_LIST_CAP`` by user id,
    with their totals. Nothing is awaited of a notification whose items ask no answer."""
    notification_id = notification["id"]
    rows = await action_store.responses_of_notification(conn, notification_id, RESPONSE_LIST_CAP)
    responses_total = len(rows)
    if responses_total == RESPONSE_LIST_CAP:
        responses_total = await action_store.count_responses(conn, notification_id)
    awaiting: list[str] = []
    if has_answerable_actions(notification["rendered"]):
        awaiting = await action_store.awaiting_of_notification(conn, notification_id, RESPONSE_LIST_CAP)
    awaiting_total = len(awaiting)
    if awaiting_total == RESPONSE_LIST_CAP:
        awaiting_total = await action_store.count_awaiting(conn, notification_id)
    return {
        "responses": [_response_json(r) for r in rows],
        "responses_total": responses_total,
        "awaiting": awaiting,
        "awaiting_total": awaiting_total,
    }


def _response_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "item_id": row["item_id"],
        "action": row["action"],
        "reason": row["reason"],
        "at": row["created_at"].isoformat(),
    }
