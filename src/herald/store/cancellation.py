"""Cancelling by ``cancellation_key``: every notification given that key at trigger time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.rules import SkipReason
from herald.store.tables import deliveries, notifications


@dataclass(frozen=True)
class KeyCancelled:
    notifications: int
    """Notifications that had something unsent: their fan-out or send time still to come, or a
    pending delivery."""
    deliveries: int

    def as_json(self) -> dict[str, int]:
        return {"cancelled": self.notifications, "cancelled_deliveries": self.deliveries}


async def cancel_by_key(conn: AsyncConnection, key: str, *, cancellable: Sequence[str], now: datetime) -> KeyCancelled:
    """In the caller's transaction: the notifications with ``key`` whose status is in
    ``cancellable`` become ``cancelled``, then every pending delivery of any notification with
    ``key`` ends cancelled.

    The statuses first: the UPDATE takes each such notification's row lock, which a fan-out chunk
    also takes (``notification_store.lock_status``) before it writes deliveries. So a chunk either
    committed before (its deliveries are seen and cancelled by the second statement, which reads
    anew on PostgreSQL) or runs after and finds the notification cancelled and writes nothing.
    """
    stopped = await conn.execute(
        update(notifications)
        .where(notifications.c.cancellation_key == key, notifications.c.status.in_(cancellable))
        .values(status="cancelled", updated_at=now)
        .returning(notifications.c.id)
    )
    ids = {row[0] for row in stopped}
    keyed = select(notifications.c.id).where(notifications.c.cancellation_key == key).scalar_subquery()
    ended = await conn.execute(
        update(deliveries)
        .where(deliveries.c.notification_id.in_(keyed), deliveries.c.status == "pending")
        .values(
            status="cancelled",
            reason=SkipReason.CANCELLED.value,
            reason_detail="cancelled by the sender (cancellation key)",
            next_attempt_at=None,
            updated_at=now,
        )
        .returning(deliveries.c.notification_id)
    )
    delivery_of = [row[0] for row in ended]
    ids.update(delivery_of)
    return KeyCancelled(len(ids), len(delivery_of))
