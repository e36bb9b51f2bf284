"""Prometheus metrics (the default registry, defined once per process).

prometheus_client (with the HTTP servers and gzip its exposition module brings, ~1.3 MiB) is
imported when a metric is first touched or ``/metrics`` is first scraped, not at start: the
metrics are module attributes made on first access (PEP 562 ``__getattr__``), then plain globals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from herald.core.outcomes import reason_label

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

    notifications_accepted: Counter
    inbox_items_written: Counter
    deliveries_finished: Counter
    delivery_reasons: Counter
    retention_purged_rows: Counter
    send_seconds: Histogram
    sends_in_flight: Gauge
    sends_total: Counter
    deliveries_due: Gauge
    oldest_due_delivery_age_seconds: Gauge

_defining = threading.Lock()  # the default registry takes each name once, whichever thread comes first


def _define() -> None:
    with _defining:
        if "notifications_accepted" not in globals():
            _register()


def _register() -> None:
    from prometheus_client import Counter, Gauge, Histogram

    globals().update(
        notifications_accepted=Counter("herald_notifications_accepted_total", "Notifications accepted", ["type"]),
        inbox_items_written=Counter("herald_inbox_items_written_total", "In-app inbox items written"),
        deliveries_finished=Counter(
            "herald_deliveries_finished_total", "Delivery attempts by outcome", ["channel", "outcome"]
        ),
        # label values from closed lists only (DeliveryStatus, core.outcomes.REASON_CODES): see count_reason
        delivery_reasons=Counter(
            "herald_delivery_reasons_total",
            "Deliveries recorded with a reason (skipped, deferred, failed, cancelled), by status and reason code",
            ["status", "reason"],
        ),
        retention_purged_rows=Counter(
            "herald_retention_purged_rows_total", "Rows deleted by the retention purge, by table", ["table"]
        ),
        send_seconds=Histogram("herald_send_seconds", "Time spent in channel.send", ["channel"]),
        sends_in_flight=Gauge("herald_sends_in_flight", "Channel sends currently in progress in this process"),
        sends_total=Counter("herald_sends_total", "Channel sends by outcome", ["channel", "outcome"]),
        # Queue gauges: read from the database at scrape time (engine/queue_metrics.py), so every
        # process that serves /metrics reports the whole queue, not its own share.
        deliveries_due=Gauge(
            "herald_deliveries_due", "Pending deliveries whose next attempt is due now", ["channel", "priority"]
        ),
        oldest_due_delivery_age_seconds=Gauge(
            "herald_oldest_due_delivery_age_seconds",
            "Seconds since the oldest due pending delivery became due (0 when none is due)",
        ),
    )


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # import machinery and tools probing for dunders: never a metric
        raise AttributeError(name)
    _define()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def count_reason(status: str, reason: str | None, n: int = 1) -> None:
    """Count ``n`` deliveries recorded with ``status`` for ``reason`` (a code; anything else is
    counted as ``other``): skipped and deferred ones per rule, failed ones per cause."""
    if reason is None or n <= 0:
        return
    _define()
    counter: Counter = globals()["delivery_reasons"]
    counter.labels(status, reason_label(reason)).inc(n)


def count_written(rows: Iterable[Mapping[str, Any]]) -> None:
    """Count the delivery rows written already settled with a reason (an in-app line skipped at
    trigger time for a preference, one superseded by a merge): the worker never claims them, so
    its settling, which counts the others, never sees them."""
    for row in rows:
        if row.get("reason") is not None and row.get("status") not in ("pending", "sending"):
            count_reason(row["status"], row["reason"])


def exposition() -> tuple[bytes, str]:
    """Every metric of the default registry in the Prometheus text format, and its content type
    (Herald's own metrics included, even before the first one is touched)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    _define()
    return generate_latest(), CONTENT_TYPE_LATEST
