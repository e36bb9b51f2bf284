"""The dashboard's per-hour chart on SQLite and PostgreSQL: deliveries that ended at known UTC hours are
counted in those hours (the SVG's labels and the table), an empty database draws 24 empty hours, and the
chart is a scalable inline SVG (no script, no fixed width: it fits a 390 px screen)."""

from __future__ import annotations

import html as htmllib
import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from herald.core.console import Role
from herald.store.dashboard import DeliveryTally
from herald.store.tables import deliveries
from herald.store.types import utcnow
from herald.web.console.dashboard import CHART_HOURS, CHART_STATUSES, PLOT_HEIGHT, TOP, hour_chart
from tests.conftest import Harness
from tests.web.console_support import logged_in


def hour_rows(page: str) -> dict[str, list[int]]:
    """The chart's table: UTC hour ("YYYY-MM-DDTHH") → counts (sent, delivered, failed, skipped)."""
    rows = re.findall(r'<tr data-hour="([^"]+)">(.*?)</tr>', page, re.S)
    return {hour: [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', cells)] for hour, cells in rows}


def bar_labels(page: str) -> list[str]:
    return [htmllib.unescape(label) for label in re.findall(r'<g class="hour" role="img" aria-label="([^"]*)"', page)]


async def settle(harness: Harness, delivery_id: str, status: str, at: datetime) -> None:
    async with harness.herald.db.write() as conn:
        await conn.execute(
            update(deliveries).where(deliveries.c.id == delivery_id).values(status=status, updated_at=at)
        )


async def test_deliveries_settled_at_known_hours_are_counted_in_those_hours(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    r = await harness.trigger({"type": "order.shipped", "to": [f"u{i}" for i in range(6)], "data": {}})
    assert r.status_code == 202, r.text
    async with harness.herald.db.read() as conn:
        ids = [row.id for row in await conn.execute(select(deliveries.c.id).order_by(deliveries.c.id))]
    assert len(ids) == 6
    current = utcnow().replace(minute=0, second=0, microsecond=0)
    two_ago, five_ago = current - timedelta(hours=2), current - timedelta(hours=5)
    await settle(harness, ids[0], "sent", two_ago + timedelta(minutes=1))
    await settle(harness, ids[1], "sent", two_ago + timedelta(minutes=59, seconds=59))
    await settle(harness, ids[2], "failed", two_ago + timedelta(minutes=30))
    await settle(harness, ids[3], "skipped", five_ago + timedelta(minutes=5))
    await settle(harness, ids[4], "delivered", five_ago + timedelta(minutes=6))
    await settle(harness, ids[5], "failed", current - timedelta(hours=30))  # outside the window

    await logged_in(harness.client, harness.herald, "alice", Role.VIEWER)
    page = (await harness.client.get("/console", headers={"Accept-Language": "en"})).text
    rows = hour_rows(page)
    assert len(rows) == CHART_HOURS
    assert rows[two_ago.strftime("%Y-%m-%dT%H")] == [2, 0, 1, 0]
    assert rows[five_ago.strftime("%Y-%m-%dT%H")] == [0, 1, 0, 1]
    others = {
        h: c for h, c in rows.items() if h not in {two_ago.strftime("%Y-%m-%dT%H"), five_ago.strftime("%Y-%m-%dT%H")}
    }
    assert all(c == [0, 0, 0, 0] for c in others.values()), others
    labels = bar_labels(page)
    assert f"{two_ago:%H}:00 UTC: 2 sent, 0 delivered, 1 failed, 0 skipped" in labels
    assert f"{five_ago:%H}:00 UTC: 0 sent, 1 delivered, 0 failed, 1 skipped" in labels
    assert "the tallest bar is 3 deliveries" in page
    # the bars are drawn: 2 sent + 1 failed segments at two_ago, 1 delivered + 1 skipped at five_ago
    assert page.count('class="bar-sent" x=') == 1 and page.count('class="bar-failed" x=') == 1
    assert page.count('class="bar-delivered" x=') == 1 and page.count('class="bar-skipped" x=') == 1

    zh = (await harness.client.get("/console", headers={"Accept-Language": "zh-CN"})).text
    assert "最近 24 小时逐小时统计（UTC）" in zh
    assert f"{two_ago:%H}:00 UTC：已发送 2，已送达 0，失败 1，已跳过 0" in bar_labels(zh)


async def test_an_empty_database_draws_24_empty_hours(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice", Role.VIEWER)
    page = (await harness.client.get("/console", headers={"Accept-Language": "en"})).text
    rows = hour_rows(page)
    assert len(rows) == CHART_HOURS and all(c == [0, 0, 0, 0] for c in rows.values())
    current = utcnow().replace(minute=0, second=0, microsecond=0)
    assert list(rows)[-1] in {current.strftime("%Y-%m-%dT%H"), (current - timedelta(hours=1)).strftime("%Y-%m-%dT%H")}
    assert len(bar_labels(page)) == CHART_HOURS
    assert not re.search(r'class="bar-(sent|delivered|failed|skipped)" x=', page)
    # a scalable SVG: a viewBox, no fixed width or height attribute, no script anywhere in the page
    svg = re.search(r"<svg[^>]*>", page)
    assert svg and "viewBox=" in svg.group(0) and " width=" not in svg.group(0) and " height=" not in svg.group(0)
    assert "<script>" not in page and " style=" not in page


HOURS = st.integers(min_value=-30, max_value=0)


@given(
    st.lists(
        st.tuples(HOURS, st.sampled_from(["sent", "delivered", "failed", "skipped", "expired"]), st.integers(1, 10**6)),
        max_size=40,
    )
)
def test_the_chart_counts_each_tally_in_its_hour_and_scales_to_the_tallest(raw: list[tuple[int, str, int]]) -> None:
    at = datetime(2026, 12, 4, 18, 33, tzinfo=UTC)
    current = at.replace(minute=0)
    tallies = [DeliveryTally(s, "webhook", None, n, current + timedelta(hours=h)) for h, s, n in raw]
    chart = hour_chart(tallies, at)
    assert len(chart.bars) == CHART_HOURS and chart.bars[-1].hour == current
    for bar in chart.bars:
        expected = {
            s: sum(n for h, st_, n in raw if st_ == s and current + timedelta(hours=h) == bar.hour)
            for s in CHART_STATUSES
        }
        assert bar.counts == expected
        total = sum(bar.counts.values())
        assert chart.peak >= total
        if bar.segments:  # stacked from the axis up, never above the plot
            assert bar.segments[0].y + bar.segments[0].height == TOP + PLOT_HEIGHT
            assert min(s.y for s in bar.segments) >= TOP - len(CHART_STATUSES)
        assert len(bar.segments) == sum(1 for n in bar.counts.values() if n)
