"""Deliveries (notification x user x channel): the trace and the work queue (see queue.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import DeliveryStatus
from herald.core.outcomes import Outcome
from herald.store.dialect import upsert
from herald.store.queue import Queue, lease_due_rows, notify_work
from herald.store.records import Delivery
from herald.store.tables import deliveries, delivery_attempts

LIVE = ("pending", "sending")
QUEUE = Queue(deliveries, due_column="next_attempt_at", live_statuses=LIVE, leased_status="sending")


async def insert_deliveries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(deliveries), list(rows))
        await notify_work(conn)


async def claim_due_deliveries(
    conn: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[Delivery]:
    """Lease up to ``limit`` due deliveries, high priority first; attempts is counted here."""
    rows = await lease_due_rows(conn, QUEUE, owner=owner, now=now, lease_until=lease_until, limit=limit)
    return [Delivery.from_row(r) for r in rows]


async def settle_delivery(
    conn: AsyncConnection,
    delivery: Delivery,
    outcome: Outcome,
    *,
    owner: str,
    started_at: datetime,
    now: datetime,
) -> bool:
    """Record ``outcome`` (and the attempt, when it was one) if ``owner`` still holds the lease.

    False, changing nothing, when the lease was lost: another worker has the row now.
    """
    values: dict[str, Any] = {
        "status": outcome.status.value,
        "lease_owner": None,
        "lease_until": None,
        "next_attempt_at": outcome.next_attempt_at,
        "updated_at": now,
    }
    if outcome.reason is not None or outcome.status is DeliveryStatus.SENT:
        values["reason"] = outcome.reason
    if outcome.trace_error is not None:
        values["last_error"] = outcome.trace_error
    elif outcome.status is DeliveryStatus.SENT:
        values["last_error"] = None  # earlier failures stay in the attempt log
    if outcome.provider_message_id is not None:
        values["provider_message_id"] = outcome.provider_message_id
    if outcome.account is not None:
        values["account"] = outcome.account
    if not outcome.attempted and outcome.status is DeliveryStatus.PENDING:
        values["attempts"] = deliveries.c.attempts - 1  # claimed but deliberately not tried
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery.id, deliveries.c.lease_owner == owner, deliveries.c.status == "sending")
        .values(**values)
    )
    if result.rowcount == 0:
        return False
    if outcome.attempted:
        await record_attempt(
            conn,
            {
                "delivery_id": delivery.id,
                "attempt": delivery.attempts,
                "worker": owner,
                "started_at": started_at,
                "finished_at": now,
                "outcome": outcome.attempt_label,
                "account": outcome.account,
                "code": outcome.code,
                "error": outcome.attempt_error,
            },
        )
    return True


async def release_deliveries(conn: AsyncConnection, ids: Sequence[str], *, owner: str, now: datetime) -> int:
    """Give leased rows back unattempted (shutdown)."""
    if not ids:
        return 0
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(list(ids)), deliveries.c.lease_owner == owner, deliveries.c.status == "sending")
        .values(
            status="pending",
            lease_owner=None,
            lease_until=None,
            next_attempt_at=now,
            attempts=deliveries.c.attempts - 1,
            updated_at=now,
        )
    )
    return int(result.rowcount)


async def record_attempt(conn: AsyncConnection, row: dict[str, Any]) -> None:
    # A retried claim after a crash can reuse an attempt number; keep the first record.
    await conn.execute(upsert(conn, delivery_attempts).values(**row).on_conflict_do_nothing())


async def deliveries_of(conn: AsyncConnection, notification_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(deliveries)
        .where(deliveries.c.notification_id == notification_id)
        .order_by(deliveries.c.user_id, deliveries.c.channel)
    )
    return [dict(r) for r in rows.mappings()]


async def attempts_of(conn: AsyncConnection, delivery_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(delivery_ids), 5000):
        rows = await conn.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_(list(delivery_ids[start : start + 5000])))
            .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt)
        )
        for r in rows.mappings():
            out.setdefault(r["delivery_id"], []).append(dict(r))
    return out


async def cancel_pending(conn: AsyncConnection, notification_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.notification_id == notification_id, deliveries.c.status == "pending")
        .values(status="cancelled", reason="cancelled by the sender", next_attempt_at=None, updated_at=now)
    )
    return int(result.rowcount)


async def status_counts(conn: AsyncConnection, notification_id: str) -> dict[str, int]:
    rows = await conn.execute(
        select(deliveries.c.status, func.count())
        .where(deliveries.c.notification_id == notification_id)
        .group_by(deliveries.c.status)
    )
    return {s: int(n) for s, n in rows}


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    row = await conn.execute(select(func.min(deliveries.c.next_attempt_at)).where(and_(deliveries.c.status.in_(LIVE))))
    value = row.scalar()
    return value if value is None or isinstance(value, datetime) else None


async def find_for_receipt(
    conn: AsyncConnection, channel: str, delivery_id: str | None, provider_message_id: str | None
) -> dict[str, Any] | None:
    """The delivery a provider's report is about: by our id when echoed back, else by theirs."""
    if delivery_id:
        query = select(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.channel == channel)
    elif provider_message_id:
        query = select(deliveries).where(
            deliveries.c.channel == channel, deliveries.c.provider_message_id == provider_message_id
        )
    else:
        return None
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def record_receipt(
    conn: AsyncConnection, delivery_id: str, *, status: str, reason: str | None, now: datetime
) -> bool:
    """Move a sent delivery to delivered / undelivered; reports for other states are ignored."""
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == "sent")
        .values(status=status, reason=reason, updated_at=now)
    )
    return result.rowcount > 0
