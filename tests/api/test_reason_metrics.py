"""GET /metrics counts deliveries per status and reason code (``herald_delivery_reasons_total``):
what the worker settles (skipped for a rule or a missing account, expired) and what a cancel ends,
each counted once, with labels from the closed list of codes only."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from herald.core.outcomes import REASON_CODES
from herald.core.rules import SkipReason
from herald.engine import metrics
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness

METRIC = "herald_delivery_reasons_total"


async def reason_counts(h: Harness) -> dict[tuple[str, str], float]:
    r = await h.client.get("/metrics")
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == METRIC:
                out[(sample.labels["status"], sample.labels["reason"])] = float(sample.value)
    return out


def delta(after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


async def test_settled_and_cancelled_deliveries_are_counted_per_reason(harness: Harness) -> None:
    h = harness
    await h.put_type("order.shipped", ["webhook"], {})  # no webhook account: skipped, no_account
    before = await reason_counts(h)

    await h.trigger({"type": "order.shipped", "to": ["u1", "u2", "u3"], "data": {}})
    expiring = await h.trigger(
        {"type": "order.shipped", "to": ["u4"], "data": {}, "expires_at": (utcnow() + timedelta(hours=1)).isoformat()}
    )
    async with h.herald.db.write() as conn:  # u4's delivery is past its expiry when claimed
        await conn.execute(update(deliveries).where(deliveries.c.user_id == "u4").values(expires_at=utcnow()))
    cancelled = await h.trigger({"type": "order.shipped", "to": ["u5", "u6"], "data": {}})
    r = await h.client.delete(f"/v1/notifications/{cancelled.json()['id']}", headers=h.sender())
    assert r.status_code == 200 and r.json()["cancelled_deliveries"] == 2
    await h.drain()
    assert expiring.status_code == 202

    assert delta(await reason_counts(h), before) == {
        ("skipped", "no_account"): 3,
        ("skipped", "expired"): 1,
        ("cancelled", "cancelled"): 2,
    }
    await h.drain()  # nothing more to settle: nothing more counted
    assert delta(await reason_counts(h), before) == {
        ("skipped", "no_account"): 3,
        ("skipped", "expired"): 1,
        ("cancelled", "cancelled"): 2,
    }


async def test_labels_come_from_the_closed_list_only(harness: Harness) -> None:
    metrics.count_reason("skipped", SkipReason.QUIET_HOURS.value)
    metrics.count_reason("pending", "quiet_hours")
    metrics.count_reason("skipped", "free text from a provider: 用户不存在 \x00")
    metrics.count_reason("sent", None)  # no reason: not counted
    counts = await reason_counts(harness)
    assert counts[("skipped", "quiet_hours")] >= 1 and counts[("pending", "quiet_hours")] >= 1
    assert counts[("skipped", "other")] >= 1
    assert {reason for _, reason in counts} <= REASON_CODES | {"other"}


async def test_rows_written_already_settled_are_counted_too(harness: Harness) -> None:
    """In-app lines decided at trigger time never reach the worker's settling: a recipient who
    turned the inbox off (skipped, preference), an item taken over by a merge (delivered, merged)."""
    h = harness
    await h.put_type("post.liked", ["inapp"], {"inapp": {"title": "${count} 人赞了你的文章"}})
    r = await h.client.put(
        "/v1/notification-types/post.liked",
        json={"channels": ["inapp"], "merge": {"key": "${post}", "window_seconds": 3600}},
        headers=h.admin(),
    )
    assert r.status_code in (200, 201), r.text
    r = await h.client.put("/v1/me/preferences", json={"channels": {"inapp": False}}, headers=h.user("quiet"))
    assert r.status_code == 200, r.text
    before = await reason_counts(h)
    for actor in ("a", "b"):
        r = await h.trigger({"type": "post.liked", "to": ["alice", "quiet"], "data": {"post": "p1", "who": actor}})
        assert r.status_code == 202, r.text
    await h.drain()
    assert delta(await reason_counts(h), before) == {("skipped", "preference"): 2, ("delivered", "merged"): 1}
