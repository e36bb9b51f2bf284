"""What happens to an accepted notification from outside the worker: cancelling it, reading its
trace, and the accounts a trigger may ask for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.errors import NotFound
from herald.engine import actions as action_engine
from herald.engine import digests as digest_engine
from herald.engine import metrics
from herald.store import cancellation as cancellation_store
from herald.store import deliveries as delivery_store
from herald.store import digests as digest_store
from herald.store import inbox as inbox_store
from herald.store import notifications as notification_store
from herald.store.cancellation import KeyCancelled
from herald.store.db import Database
from herald.store.types import utcnow

DELIVERY_LIST_CAP = 1000
"""A trace lists at most this many deliveries (and as many in-app items); the counts are of all."""

CANCELLABLE = ("scheduled", "expanding", "accepted")
"""Notification statuses that a cancel ends: work on it is still to come (its fan-out, or its send time)."""


@dataclass(frozen=True)
class Cancelled:
    id: str
    status: str
    """The notification's status after the cancel: ``cancelled``, or what it was when it had
    already been expanded (only its pending deliveries were cancelled)."""
    cancelled_deliveries: int

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "cancelled_deliveries": self.cancelled_deliveries}


async def cancel_notification(db: Database, notification_id: str, *, now: datetime | None = None) -> Cancelled:
    """Cancel what has not been sent yet: every pending delivery, and the notification itself while
    it is still scheduled or being expanded. NotFound when there is no such notification."""
    now = now or utcnow()
    async with db.write() as conn:
        notification = await notification_store.get_notification(conn, notification_id)
        if notification is None:
            raise NotFound("notification")
        status = notification["status"]
        # the status first: its row lock orders this cancel with a fan-out chunk (store/cancellation.py)
        if status in CANCELLABLE:
            await notification_store.set_notification_status(conn, notification_id, "cancelled", now)
            status = "cancelled"
        cancelled = await delivery_store.cancel_pending(conn, notification_id, now)
        cancelled += await digest_store.withdraw_events(conn, notification_id, now)  # collected, not sent yet
    metrics.count_reason("cancelled", "cancelled", cancelled)
    return Cancelled(notification_id, status, cancelled)


async def cancel_by_key(
    db: Database,
    key: str,
    *,
    now: datetime | None = None,
    on_done: Callable[[AsyncConnection, KeyCancelled], Awaitable[None]] | None = None,
) -> KeyCancelled:
    """Cancel what is unsent of every notification triggered with ``cancellation_key`` = ``key``,
    as ``cancel_notification`` does for one; nothing with another key is touched. No notification
    with the key is not an error: the answer counts 0 (a retried cancel finds nothing left).
    ``on_done`` runs in the same transaction, last (the Idempotency-Key's answer is stored there)."""
    now = now or utcnow()
    async with db.write() as conn:
        result = await cancellation_store.cancel_by_key(conn, key, cancellable=CANCELLABLE, now=now)
        if on_done is not None:
            await on_done(conn, result)
    metrics.count_reason("cancelled", "cancelled", result.deliveries)
    return result


@dataclass(frozen=True)
class NotificationTrace:
    """Everything ``GET /v1/notifications/{id}`` (and the console's trace) shows of a notification,
    as stored: the caller shapes it (api/notifications.py ``notification_view``)."""

    notification: dict[str, Any]
    deliveries: list[dict[str, Any]]
    """The first ``DELIVERY_LIST_CAP`` delivery rows of the channels other than the in-app line."""
    attempts: dict[str, list[dict[str, Any]]]
    """Delivery id → its attempts."""
    items: list[dict[str, Any]]
    """The first ``DELIVERY_LIST_CAP`` in-app items."""
    truncated: bool
    counts: dict[str, int]
    """Deliveries by status, the in-app items counted as delivered."""
    answers: dict[str, Any]
    digest: dict[str, Any] | None


async def notification_trace(db: Database, notification_id: str) -> NotificationTrace:
    """The notification with its deliveries, their attempts, its in-app items, answers and digest;
    NotFound when there is no such notification."""
    async with db.read() as conn:
        n = await notification_store.get_notification(conn, notification_id)
        if n is None:
            raise NotFound("notification")
        rows = await delivery_store.deliveries_of(conn, notification_id)
        attempts = await delivery_store.attempts_of(conn, [d["id"] for d in rows[:DELIVERY_LIST_CAP]])
        items = await inbox_store.items_of_notification(conn, notification_id, DELIVERY_LIST_CAP + 1)
        inapp_total = await inbox_store.count_items_of_notification(conn, notification_id) if items else 0
        counts = await delivery_store.status_counts(conn, notification_id)
        answers = await action_engine.notification_answers(conn, n)
        digest = await digest_engine.digest_summary(conn, n)
    if items and "inapp" in n["channels"]:
        counts["delivered"] = counts.get("delivered", 0) + inapp_total
    return NotificationTrace(
        notification=n,
        deliveries=rows[:DELIVERY_LIST_CAP],
        attempts=attempts,
        items=items[:DELIVERY_LIST_CAP],
        truncated=len(rows) > DELIVERY_LIST_CAP or len(items) > DELIVERY_LIST_CAP,
        counts=counts,
        answers=answers,
        digest=digest,
    )
