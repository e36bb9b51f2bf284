"""The queue gauges, refreshed from the database when /metrics is scraped.

A scrape runs one grouped query at most every ``max_age`` seconds (several Prometheus servers, or
a dashboard polling hard, cost one query per window). A database that cannot answer leaves the
last values in place: /metrics must keep working during the outage it is there to show.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from herald.core.enums import Priority
from herald.engine import metrics
from herald.store.db import Database
from herald.store.queue_stats import DueCount, due_delivery_counts
from herald.store.types import utcnow

log = logging.getLogger(__name__)
MAX_AGE_SECONDS = 2.0
QUERY_TIMEOUT_SECONDS = 2.0
_PRIORITY_NAMES = {p.rank: p.value for p in Priority}


class QueueGauges:
    """Sets ``herald_deliveries_due`` and ``herald_oldest_due_delivery_age_seconds`` from the database."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_age = max_age
        self._refreshed_at = float("-inf")
        # label pairs reported before: set to 0 when they empty, so a drained lane reads 0, not its last count
        self._seen: set[tuple[str, str]] = set()

    async def refresh(self, db: Database) -> None:
        if time.monotonic() - self._refreshed_at < self.max_age:
            return
        # Marked before the query (no await in between): a scrape arriving meanwhile, or after a
        # failure, uses the values in place instead of stacking queries on a slow or down database.
        self._refreshed_at = time.monotonic()
        now = utcnow()
        try:
            async with asyncio.timeout(QUERY_TIMEOUT_SECONDS), db.read() as conn:
                counts = await due_delivery_counts(conn, now)
        except Exception as exc:  # an outage: keep the last values
            log.debug("queue gauges not refreshed, keeping the last values: %s: %s", type(exc).__name__, exc)
            return
        self._publish(counts, now)

    def _publish(self, counts: list[DueCount], now: datetime) -> None:
        current: dict[tuple[str, str], int] = {}
        oldest: datetime | None = None
        for row in counts:
            labels = (row.channel, _PRIORITY_NAMES.get(row.priority, str(row.priority)))
            current[labels] = current.get(labels, 0) + row.count
            if oldest is None or row.oldest_due_at < oldest:
                oldest = row.oldest_due_at
        for labels in self._seen - current.keys():
            metrics.deliveries_due.labels(*labels).set(0)
        for labels, n in current.items():
            metrics.deliveries_due.labels(*labels).set(n)
        self._seen |= current.keys()
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        metrics.oldest_due_delivery_age_seconds.set(age)


_process_gauges = QueueGauges()  # the gauges are process-wide (the default registry), so is their refresh


async def refresh_queue_gauges(db: Database) -> None:
    """Bring the queue gauges up to date (at most ``MAX_AGE_SECONDS`` old) before a scrape."""
    await _process_gauges.refresh(db)
