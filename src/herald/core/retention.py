"""What the retention purge deletes, and up to when: pure decisions from the configured ages.

The ages come from settings (``HERALD_RETENTION_*``); 0 keeps a kind of row forever. The purge
itself (``engine/retention.py``) runs the plan table by table, in small batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

MAX_PAUSE_SECONDS = 1.0
BATCH_TARGET_SECONDS = 0.05
"""The longest a batch should take on PostgreSQL: it holds the locks of the rows it deletes (rows
no one else writes) and competes for the database's time that long."""
SQLITE_BATCH_TARGET_SECONDS = 0.01
"""The same on SQLite, shorter: a batch holds the database's one write lock, so every trigger and
every send waits behind it, and a process that finds the lock taken retries with growing sleeps
(its busy handler), so that a long batch costs the waiting writes more than its own length
(``bench/retention.py``: trigger p99 385 ms with batches of 1,000, 52 ms with batches of 200)."""
MIN_BATCH = 10


class Purge(StrEnum):
    """The kinds of rows the purge deletes (the ``table`` label of its metric)."""

    DELIVERIES = "deliveries"
    """Deliveries that ended, with their attempts."""
    NOTIFICATIONS = "notifications"
    JOBS = "jobs"
    """Finished background jobs."""
    INBOX = "inbox_items"
    IDEMPOTENCY = "idempotency_keys"


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept; None: forever."""

    inbox: timedelta | None = None
    deliveries: timedelta | None = None
    """Also the age of finished jobs and of notifications no delivery refers to."""
    idempotency: timedelta | None = None
    """Counted from when the key was taken (at least its replay window)."""

    @classmethod
    def of(cls, *, inbox_days: int, deliveries_days: int, idempotency_hours: int) -> Retention:
        return cls(
            inbox=timedelta(days=inbox_days) if inbox_days > 0 else None,
            deliveries=timedelta(days=deliveries_days) if deliveries_days > 0 else None,
            idempotency=timedelta(hours=idempotency_hours) if idempotency_hours > 0 else None,
        )

    @property
    def enabled(self) -> bool:
        return any(age is not None for age in (self.inbox, self.deliveries, self.idempotency))

    def plan(self, now: datetime, *, replay_window: timedelta) -> list[tuple[Purge, datetime]]:
        """Each kind to purge with the bound its rows must lie before, in the order to purge
        them: deliveries before notifications, which go only once no delivery refers to them.

        Idempotency records are found by their expiry (taken + ``replay_window``), so their bound
        is on that column: never later than now, so a key is never dropped within its window."""
        plan: list[tuple[Purge, datetime]] = []
        if self.deliveries is not None:
            before = now - self.deliveries
            plan += [(Purge.DELIVERIES, before), (Purge.NOTIFICATIONS, before), (Purge.JOBS, before)]
        if self.inbox is not None:
            plan.append((Purge.INBOX, now - self.inbox))
        if self.idempotency is not None:
            plan.append((Purge.IDEMPOTENCY, min(now, now - self.idempotency + replay_window)))
        return plan


def pause_after(batch_seconds: float) -> float:
    """How long the purge rests after a batch that took ``batch_seconds``: as long again (at most
    half of the database's time for the purge, whatever the batch cost), capped, so that the
    writes of triggers and workers always find a gap between two batches."""
    return min(MAX_PAUSE_SECONDS, max(0.005, batch_seconds))


def next_batch_size(current: int, took: float, *, most: int, target: float = BATCH_TARGET_SECONDS) -> int:
    """The size of the next batch after one of ``current`` rows took ``took`` seconds: cut in
    proportion when it took longer than ``target`` (a batch of large rows, a busy database),
    doubled up to ``most`` when it took less than half of it."""
    if took > target:
        size = int(current * target / took)
    elif took < target / 2:
        size = current * 2
    else:
        size = current
    return max(min(MIN_BATCH, most), min(most, size))
