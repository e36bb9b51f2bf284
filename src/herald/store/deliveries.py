"""Deliveries (notification x user x channel): the trace and the work queue (see queue.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text, and_, bindparam, case, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import DeliveryStatus
from herald.core.outcomes import Outcome
from herald.store.dialect import upsert
from herald.store.queue import Queue, lease_due_rows, notify_work
from herald.store.records import Delivery
from herald.store.tables import deliveries, delivery_attempts
from herald.store.types import UTCDateTime

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


@dataclass(frozen=True)
class Settlement:
    """One outcome to record: the delivery as it was claimed, what came of it, when it started."""

    delivery: Delivery
    outcome: Outcome
    started_at: datetime


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
    (kept,) = await settle_deliveries(conn, [Settlement(delivery, outcome, started_at)], owner=owner, now=now)
    return kept


async def settle_deliveries(
    conn: AsyncConnection, items: Sequence[Settlement], *, owner: str, now: datetime
) -> list[bool]:
    """Record many outcomes at once, each exactly as ``settle_delivery`` would: the row is updated
    and its attempt logged only where ``owner`` still holds the lease (False in that place
    otherwise); an attempt already logged (a claim retried after a crash) is kept as it was.

    One statement for the whole batch on PostgreSQL (an UPDATE … FROM unnest(…) whose RETURNING
    feeds the INSERT of the attempts), three on SQLite, whatever the batch's size: settling costs
    a round trip per batch, not per delivery. Any error fails the whole batch; the caller then
    settles each alone, so one bad row never holds back the others.
    """
    kept: dict[int, bool] = {}
    for part in _distinct_runs(items):
        rows = [_settle_row(item) for _, item in part]
        if conn.dialect.name == "postgresql":
            settled = await _settle_postgres(conn, rows, owner=owner, now=now)
        else:
            settled = await _settle_sqlite(conn, rows, owner=owner, now=now)
        for i, item in part:
            kept[i] = item.delivery.id in settled
    return [kept[i] for i in range(len(items))]


def _distinct_runs(items: Sequence[Settlement]) -> list[list[tuple[int, Settlement]]]:
    """Split where a delivery id repeats (two outcomes for one row, from a worker that claimed it
    again after its lease ran out): within one statement a row is updated once, so each outcome
    goes in its own run, in order, as it would one after the other."""
    runs: list[list[tuple[int, Settlement]]] = [[]]
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.delivery.id in seen:
            runs.append([])
            seen = set()
        seen.add(item.delivery.id)
        runs[-1].append((i, item))
    return [run for run in runs if run]


def _settle_row(item: Settlement) -> dict[str, Any]:
    """What one outcome writes. Columns an outcome says nothing about keep their value: a
    ``set_*`` flag says whether reason and last_error are written (None clears them), and a None
    provider message id or account leaves the stored one."""
    outcome = item.outcome
    sent = outcome.status is DeliveryStatus.SENT
    return {
        "id": item.delivery.id,
        "status": outcome.status.value,
        "next_attempt_at": outcome.next_attempt_at,
        "set_reason": outcome.reason is not None or sent,
        "reason": outcome.reason,
        "reason_detail": outcome.detail,
        "set_error": outcome.trace_error is not None or sent,  # a send clears the last error; the log keeps it
        "last_error": outcome.trace_error,
        "provider_message_id": outcome.provider_message_id,
        "account": outcome.account,
        # claimed but deliberately not tried: the claim's attempt is undone
        "undo": 0 if outcome.attempted else 1,
        # the attempt log, when it was an attempt
        "attempt": item.delivery.attempts,
        "started_at": item.started_at,
        "label": outcome.attempt_label if outcome.attempted else None,
        "code": outcome.code,
        "error": outcome.attempt_error,
    }


_PG_SETTLE = text(
    """
    WITH v AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            id text, status text, next_attempt_at timestamptz, set_reason boolean, reason text,
            reason_detail text, set_error boolean, last_error text, provider_message_id text, account text, undo int,
            attempt int, started_at timestamptz, label text, code text, error text
        )
    ), settled AS (
        UPDATE deliveries AS d SET
            status = v.status,
            lease_owner = NULL,
            lease_until = NULL,
            next_attempt_at = v.next_attempt_at,
            updated_at = CAST(:now AS timestamptz),
            reason = CASE WHEN v.set_reason THEN v.reason ELSE d.reason END,
            reason_detail = CASE WHEN v.set_reason THEN v.reason_detail ELSE d.reason_detail END,
            last_error = CASE WHEN v.set_error THEN v.last_error ELSE d.last_error END,
            provider_message_id = COALESCE(v.provider_message_id, d.provider_message_id),
            account = COALESCE(v.account, d.account),
            attempts = d.attempts - v.undo
        FROM v
        WHERE d.id = ANY(ARRAY(SELECT id FROM v)) AND d.id = v.id AND d.lease_owner = :owner
          AND (d.status = 'sending') IS TRUE
        RETURNING d.id, v.attempt, v.started_at, v.label, v.account, v.code, v.error
    ), logged AS (
        INSERT INTO delivery_attempts (delivery_id, attempt, worker, started_at, finished_at, outcome,
                                       account, code, error)
        SELECT id, attempt, :owner, started_at, CAST(:now AS timestamptz), label, account, code, error
        FROM settled WHERE label IS NOT NULL
        ON CONFLICT DO NOTHING
    )
    SELECT id FROM settled
    """
)
"""The batch travels as one JSON array (typed by ``jsonb_to_recordset``): one text parameter,
where arrays of timestamps, booleans and integers would each cost asyncpg a type introspection
query on every new connection. It is parsed once (the MATERIALIZED ``v``), not once per row.

The rows are found by primary key (``d.id = ANY(…)``), and the status test is written
``(… = 'sending') IS TRUE`` on purpose: from a plain ``status = 'sending'`` the planner proves the
partial due index's predicate and, with a queue's statistics always stale (the rows change faster
than ANALYZE runs), may then take a bitmap scan of that whole index, every live and dead entry, to
find a batch's rows: 6,018 index tuples for a batch of 32 in one trial, the bulk of what
bench/worker.py counted as "claim index" tuples. ``IS TRUE`` keeps the same meaning (NULL is never
'sending') and leaves the primary key as the only way in."""


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def _settle_postgres(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, owner: str, now: datetime
) -> set[str]:
    payload = json.dumps([{k: _json_value(v) for k, v in r.items()} for r in rows], ensure_ascii=False)
    result = await conn.execute(_PG_SETTLE, {"rows": payload, "owner": owner, "now": now})
    return {r[0] for r in result}


def _p(name: str, type_: Any = None) -> Any:
    return bindparam(f"p_{name}", type_=type_)


# SQLite: the writer holds the database (BEGIN IMMEDIATE) from the SELECT to the commit, so which
# rows are still this worker's cannot change between the three statements.
_SQLITE_UPDATE = (
    update(deliveries)
    .where(deliveries.c.id == _p("id"), deliveries.c.lease_owner == _p("owner"), deliveries.c.status == "sending")
    .values(
        status=_p("status", String()),
        lease_owner=None,
        lease_until=None,
        next_attempt_at=_p("next_attempt_at", UTCDateTime()),
        updated_at=_p("now", UTCDateTime()),
        reason=case((_p("set_reason", Boolean()), _p("reason", Text())), else_=deliveries.c.reason),
        reason_detail=case(
            (_p("set_reason", Boolean()), _p("reason_detail", Text())), else_=deliveries.c.reason_detail
        ),
        last_error=case((_p("set_error", Boolean()), _p("last_error", Text())), else_=deliveries.c.last_error),
        provider_message_id=func.coalesce(_p("provider_message_id", String()), deliveries.c.provider_message_id),
        account=func.coalesce(_p("account", String()), deliveries.c.account),
        attempts=deliveries.c.attempts - _p("undo", Integer()),
    )
)


_UPDATE_KEYS = (
    "id",
    "status",
    "next_attempt_at",
    "set_reason",
    "reason",
    "reason_detail",
    "set_error",
    "last_error",
    "provider_message_id",
    "account",
    "undo",
)


async def _settle_sqlite(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, owner: str, now: datetime
) -> set[str]:
    ids = [r["id"] for r in rows]
    held = await conn.execute(
        select(deliveries.c.id).where(
            deliveries.c.id.in_(ids), deliveries.c.lease_owner == owner, deliveries.c.status == "sending"
        )
    )
    settled = {r[0] for r in held}
    mine = [r for r in rows if r["id"] in settled]
    if not mine:
        return settled
    await conn.execute(
        _SQLITE_UPDATE,
        [{"p_owner": owner, "p_now": now} | {f"p_{k}": r[k] for k in _UPDATE_KEYS} for r in mine],
    )
    attempts = [
        {
            "delivery_id": r["id"],
            "attempt": r["attempt"],
            "worker": owner,
            "started_at": r["started_at"],
            "finished_at": now,
            "outcome": r["label"],
            "account": r["account"],
            "code": r["code"],
            "error": r["error"],
        }
        for r in mine
        if r["label"] is not None
    ]
    if attempts:
        await conn.execute(upsert(conn, delivery_attempts).on_conflict_do_nothing(), attempts)
    return settled


async def release_deliveries(conn: AsyncConnection, ids: Sequence[str], *, owner: str, now: datetime) -> int:
    """Give leased rows back unattempted (shutdown)."""
    if not ids:
        return 0
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id.in_(list(ids)),
            deliveries.c.lease_owner == owner,
            (deliveries.c.status == "sending").is_(True),  # by primary key only (see _PG_SETTLE)
        )
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
        .values(
            status="cancelled",
            reason="cancelled",
            reason_detail="cancelled by the sender",
            next_attempt_at=None,
            updated_at=now,
        )
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
    conn: AsyncConnection, delivery_id: str, *, status: str, reason: str | None, detail: str | None, now: datetime
) -> bool:
    """Move a sent delivery to delivered / undelivered; reports for other states are ignored."""
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == "sent")
        .values(status=status, reason=reason, reason_detail=detail, updated_at=now)
    )
    return result.rowcount > 0
