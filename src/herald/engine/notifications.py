"""What happens to an accepted notification from outside the worker: cancelling it, and the
accounts a trigger may ask for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.errors import NotFound
from herald.engine import metrics
from herald.store import cancellation as cancellation_store
from herald.store import deliveries as delivery_store
from herald.store import digests as digest_store
from herald.store import notifications as notification_store
from herald.store.cancellation import KeyCancelled
from herald.store.db import Database
from herald.store.types import utcnow

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
