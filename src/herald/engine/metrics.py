"""Prometheus metrics (the default registry, defined once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

notifications_accepted = Counter("herald_notifications_accepted_total", "Notifications accepted", ["type"])
inbox_items_written = Counter("herald_inbox_items_written_total", "In-app inbox items written")
deliveries_finished = Counter(
    "herald_deliveries_finished_total", "Delivery attempts by outcome", ["channel", "outcome"]
)
send_seconds = Histogram("herald_send_seconds", "Time spent in channel.send", ["channel"])
