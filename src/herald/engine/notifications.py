"""What happens to an accepted notification from outside the worker: cancelling it, and the
accounts a trigger may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from herald.core.errors import NotFound
from herald.store import deliveries as delivery_store
from herald.store import notifications as notification_store
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
        cancelled = await delivery_store.cancel_pending(conn, notification_id, now)
        status = notification["status"]
        if status in CANCELLABLE:
            await notification_store.set_notification_status(conn, notification_id, "cancelled", now)
            status = "cancelled"
    return Cancelled(notification_id, status, cancelled)
