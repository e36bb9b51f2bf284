"""Prometheus metrics (the default registry, defined once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

notifications_accepted = Counter("herald_notifications_accepted_total", "Notifications accepted", ["type"])
inbox_items_written = Counter("herald_inbox_items_written_total", "In-app inbox items written")
deliveries_finished = Counter(
    "herald_deliveries_finished_total", "Delivery attempts by outcome", ["channel", "outcome"]
)
send_seconds = Histogram("herald_send_seconds", "Time spent in channel.send", ["channel"])
sends_in_flight = Gauge("herald_sends_in_flight", "Channel sends currently in progress in this process")
sends_total = Counter("herald_sends_total", "Channel sends by outcome", ["channel", "outcome"])
# Queue gauges: read from the database at scrape time (engine/queue_metrics.py), so every process
# that serves /metrics reports the whole queue, not its own share.
deliveries_due = Gauge(
    "herald_deliveries_due", "Pending deliveries whose next attempt is due now", ["channel", "priority"]
)
oldest_due_delivery_age_seconds = Gauge(
    "herald_oldest_due_delivery_age_seconds",
    "Seconds since the oldest due pending delivery became due (0 when none is due)",
)
