"""The one claim statement behind both work queues (deliveries and jobs).

``UPDATE … WHERE id IN (SELECT … ORDER BY priority, due LIMIT n [FOR UPDATE SKIP LOCKED])
RETURNING *``: on PostgreSQL concurrent workers skip each other's rows; on SQLite the single
writer makes the statement atomic. The due column moves to the lease's end, so a row whose
worker died becomes due again by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

WORK_CHANNEL = "herald_work"
NOTIFY_OPTION = "herald_notify"
"""Engine execution option: PostgreSQL transactions that add due work NOTIFY the workers."""


async def notify_work(conn: AsyncConnection) -> None:
    """Wake listening workers when this transaction commits (PostgreSQL delivers NOTIFY on commit,
    once per channel and payload per transaction); nothing elsewhere."""
    if (
        conn.dialect.name == "postgresql"
        and conn.sync_connection is not None
        and conn.sync_connection.get_execution_options().get(NOTIFY_OPTION, False)
    ):
        await conn.execute(text(f"NOTIFY {WORK_CHANNEL}"))


# The claim must walk the partial due index in its order and stop after ``limit`` rows: then it
# reads about the rows it takes, and marks the dead entries it steps over so no later claim reads
# them again. A queue's statistics are always stale (the due rows change faster than ANALYZE
# runs), and with some of them the planner prefers a bitmap scan of every due entry, live and
# dead, then a sort: the same claim then read from 2 to over 3,000 index tuples per delivery
# (bench/worker.py). So, for the claim's transaction only, the plans that read everything are off.
_ORDERED_SCAN_ONLY = text(
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)"
)


@dataclass(frozen=True)
class Queue:
    """A table used as a work queue: which column says when a row is due, which statuses are
    waiting or leased."""

    table: Table
    due_column: str
    live_statuses: tuple[str, ...]
    leased_status: str


async def lease_due_rows(
    conn: AsyncConnection, queue: Queue, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[dict[str, Any]]:
    table, due_column = queue.table, queue.due_column
    live_statuses, leased_status = queue.live_statuses, queue.leased_status
    due_col = table.c[due_column]
    due = (
        select(table.c.id)
        .where(table.c.status.in_(live_statuses), due_col <= now)
        .order_by(table.c.priority, due_col)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
        await conn.execute(_ORDERED_SCAN_ONLY)
    stmt = (
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(
            {
                "status": leased_status,
                "lease_owner": owner,
                "lease_until": lease_until,
                due_column: lease_until,
                "attempts": table.c.attempts + 1,
                "updated_at": now,
            }
        )
        .returning(*table.c)
    )
    rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
    rows.sort(key=lambda r: (r["priority"], r["created_at"]))
    return rows
