"""What happens to an accepted notification from outside the worker: cancelling it, and the
accounts a trigger may ask for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from herald.channels.base import Channel
from herald.core.errors import NotFound
from herald.engine.accounts import check_account_choice
from herald.store import catalog
from herald.store import deliveries as delivery_store
from herald.store import notifications as notification_store
from herald.store.db import Database
from herald.store.secretbox import SecretBox
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


async def check_trigger_accounts(
    db: Database,
    box: SecretBox,
    channels: Mapping[str, Channel],
    type_key: str,
    requested_channels: Sequence[str] | None,
    accounts: Mapping[str, Sequence[str]],
) -> dict[str, list[str]]:
    """A trigger's ``accounts`` checked against the channels the notification will use (the
    trigger's own ``channels``, else its type's) and the accounts that exist; Invalid naming the
    field otherwise. An unknown type is left for the trigger to refuse."""
    async with db.read() as conn:
        ntype = await catalog.get_type(conn, type_key)
        if ntype is None:
            return {channel: list(names) for channel, names in accounts.items()}
        allowed = list(requested_channels if requested_channels is not None else ntype["channels"])
        return await check_account_choice(conn, box, channels, accounts, allowed)
