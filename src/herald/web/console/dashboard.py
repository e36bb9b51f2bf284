"""``GET /console``: the dashboard. Deliveries that ended in the last 24 hours by status, channel and
reason; the queue (due now, sending, waiting, the age of the oldest due delivery); the in-app items
written; a chart of the last 24 UTC hours (sent, delivered, failed, skipped per hour, an inline SVG
drawn on the server with a table as its text alternative: the console's CSP allows no inline script or
style); the last failures, each linked to its notification's trace.

The figures are read by store/dashboard.py and store/queue_stats.py (index range scans) and kept
per process for ``CACHE_SECONDS``: several people with the dashboard open cost one set of queries.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from herald.store import dashboard as dashboard_store
from herald.store.dashboard import DeliveryTally, FailedDelivery
from herald.store.queue_stats import due_delivery_counts
from herald.store.types import utcnow
from herald.web.console.auth import Viewer
from herald.web.console.render import render

WINDOW = timedelta(hours=24)
CACHE_SECONDS = 15.0
FAILURES_SHOWN = 20
STATUS_ORDER = ("sent", "delivered", "undelivered", "failed", "skipped", "expired", "cancelled")
CHART_STATUSES = ("sent", "delivered", "failed", "skipped")  # stacked bottom to top
CHART_HOURS = 24
# the SVG's geometry, in viewBox units: one slot per hour, bars PLOT_HEIGHT tall at most
SLOT, BAR, TOP, PLOT_HEIGHT = 20, 14, 6, 120

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Queue:
    due: int
    sending: int
    waiting: int
    oldest_due_seconds: float | None


@dataclass(frozen=True)
class Segment:
    status: str
    y: float
    height: float


@dataclass(frozen=True)
class HourBar:
    """One UTC hour of the chart: its counts, and where its stacked bar is drawn."""

    hour: datetime
    counts: dict[str, int]
    x: float
    segments: list[Segment]


@dataclass(frozen=True)
class HourChart:
    bars: list[HourBar]
    peak: int
    width: int
    top: int
    plot_height: int
    plot_bottom: int
    height: int


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    statuses: list[str]
    by_status: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    by_reason: list[tuple[str, str, int]]
    total: int
    queue: Queue
    inbox_items: int
    failures: list[FailedDelivery]
    chart: HourChart


@dataclass
class DashboardCache:
    """The last figures this process read, and when (monotonic)."""

    value: Dashboard | None = None
    read_at: float = field(default=float("-inf"))


def _statuses(tallies: list[DeliveryTally]) -> list[str]:
    seen = {t.status for t in tallies}
    return [s for s in STATUS_ORDER if s in seen] + sorted(seen - set(STATUS_ORDER))


def _stack(counts: dict[str, int], peak: int) -> list[Segment]:
    """The bar's segments, bottom up; a non-zero count is at least one unit tall, to stay visible."""
    segments, bottom = [], float(TOP + PLOT_HEIGHT)
    for status in CHART_STATUSES:
        if counts[status]:
            height = max(1.0, round(counts[status] / peak * PLOT_HEIGHT, 2))
            bottom -= height
            segments.append(Segment(status, round(bottom, 2), height))
    return segments


def hour_chart(tallies: list[DeliveryTally], at: datetime) -> HourChart:
    """The last ``CHART_HOURS`` UTC hours, the current one (so far) last. The window's partial first
    hour (before the oldest whole hour shown) is counted in the tables but not drawn."""
    current = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [current - timedelta(hours=CHART_HOURS - 1 - i) for i in range(CHART_HOURS)]
    counts: dict[datetime, dict[str, int]] = {h: dict.fromkeys(CHART_STATUSES, 0) for h in hours}
    for tally in tallies:
        if tally.hour in counts and tally.status in CHART_STATUSES:
            counts[tally.hour][tally.status] += tally.count
    peak = max((sum(c.values()) for c in counts.values()), default=0)
    bars = [
        HourBar(h, counts[h], i * SLOT + (SLOT - BAR) / 2, _stack(counts[h], peak) if peak else [])
        for i, h in enumerate(hours)
    ]
    bottom = TOP + PLOT_HEIGHT
    return HourChart(
        bars=bars,
        peak=peak,
        width=CHART_HOURS * SLOT,
        top=TOP,
        plot_height=PLOT_HEIGHT,
        plot_bottom=bottom,
        height=bottom + 18,
    )


def summarize(
    tallies: list[DeliveryTally],
    queue: Queue,
    inbox_items: int,
    failures: list[FailedDelivery],
    at: datetime,
) -> Dashboard:
    by_status: dict[str, int] = defaultdict(int)
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_reason: dict[tuple[str, str], int] = defaultdict(int)
    for tally in tallies:
        by_status[tally.status] += tally.count
        by_channel[tally.channel][tally.status] += tally.count
        if tally.reason:
            by_reason[(tally.status, tally.reason)] += tally.count
    reasons = sorted(((s, r, n) for (s, r), n in by_reason.items()), key=lambda x: (-x[2], x[0], x[1]))
    return Dashboard(
        at=at,
        statuses=_statuses(tallies),
        by_status=dict(by_status),
        by_channel={c: dict(v) for c, v in sorted(by_channel.items())},
        by_reason=reasons,
        total=sum(by_status.values()),
        queue=queue,
        inbox_items=inbox_items,
        failures=failures,
        chart=hour_chart(tallies, at),
    )


async def read_dashboard(console: Viewer) -> Dashboard:
    herald = console.herald
    now = utcnow()
    since = now - WINDOW
    async with herald.db.read() as conn:
        tallies = await dashboard_store.ended_deliveries(conn, since)
        live = await dashboard_store.live_deliveries(conn)
        due = await due_delivery_counts(conn, now)
        inbox_items = await dashboard_store.inbox_items_written(conn, since)
        failures = await dashboard_store.last_failures(conn, since, FAILURES_SHOWN)
    due_count = sum(d.count for d in due)
    oldest = min((d.oldest_due_at for d in due), default=None)
    queue = Queue(
        due=due_count,
        sending=live.get("sending", 0),
        waiting=max(0, live.get("pending", 0) - due_count),
        oldest_due_seconds=max(0.0, (now - oldest).total_seconds()) if oldest is not None else None,
    )
    return summarize(tallies, queue, inbox_items, failures, now)


def duration(console: Viewer, seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return console.t(f"duration.{unit}", n=int(seconds // size))
    return console.t("duration.seconds", n=int(seconds))


@router.get("/console")
async def dashboard_page(console: Viewer) -> Response:
    cache: DashboardCache = console.request.app.state.console_dashboard
    if cache.value is None or time.monotonic() - cache.read_at > CACHE_SECONDS:
        cache.value = await read_dashboard(console)
        cache.read_at = time.monotonic()
    board = cache.value
    oldest = board.queue.oldest_due_seconds
    return render(
        console,
        "dashboard.html",
        title="dashboard.title",
        nav="dashboard",
        board=board,
        cache_seconds=int(CACHE_SECONDS),
        chart_statuses=CHART_STATUSES,
        bar_width=BAR,
        oldest_due=duration(console, oldest) if oldest is not None else "—",
    )


def install_state(app: FastAPI) -> None:
    app.state.console_dashboard = DashboardCache()
