"""Dedup, frequency caps and throttle end to end: types set through the API, triggers through the
API, the worker sending to real local receivers; on SQLite and PostgreSQL, with the slots in the
database or in Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from herald.core.frequency import Window, cap_window
from herald.core.rules import Cap, CapPeriod
from herald.engine.rule_counters import DatabaseRuleCounters, RedisRuleCounters, RuleCounters
from herald.engine.service import Herald
from herald.engine.worker import Worker
from herald.store.tables import deliveries, rule_slots
from herald.store.types import utcnow
from tests.conftest import REDIS_URL, Harness
from tests.support import SECRET, Mailbox, Receiver

COUNTERS = ["database"] + (["redis"] if REDIS_URL else [])
EMAIL_TEMPLATE = {"title": "订单 ${order} 已发货", "body": "订单 ${order} 已发货"}


class CountingCounters:
    """Counts the takes one Herald's worker makes (to show both workers raced)."""

    def __init__(self, inner: RuleCounters) -> None:
        self.inner = inner
        self.takes = 0

    async def take(self, holder: str, windows: Sequence[Window]) -> Window | None:
        self.takes += 1
        return await self.inner.take(holder, windows)

    async def give_back(self, holder: str, windows: Sequence[Window]) -> None:
        await self.inner.give_back(holder, windows)

    async def purge_expired(self) -> int:
        return await self.inner.purge_expired()

    async def aclose(self) -> None:
        await self.inner.aclose()


class Slots:
    """Where the harness keeps its slots: its database, or Redis under a prefix of this test's own
    (so no earlier run's slots count)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.prefix = f"herald-test:{secrets.token_hex(4)}:"

    async def use(self, herald: Herald) -> CountingCounters:
        await herald.rule_counters.aclose()
        inner: RuleCounters
        if self.backend == "redis":
            assert REDIS_URL is not None
            inner = RedisRuleCounters(REDIS_URL, prefix=self.prefix)
        else:
            inner = DatabaseRuleCounters(herald.db)
        herald.rule_counters = CountingCounters(inner)
        return herald.rule_counters


@pytest.fixture(params=COUNTERS)
async def slots(request: pytest.FixtureRequest, harness: Harness) -> AsyncIterator[Slots]:
    chosen = Slots(request.param)
    await chosen.use(harness.herald)
    yield chosen


@pytest.fixture
def slow_retries(harness: Harness) -> None:
    """A retry is not due again within the same drain (``make_all_due`` makes it due)."""
    harness.herald.settings.retry_base_seconds = harness.herald.settings.retry_max_seconds = 60


async def setup_hook(h: Harness, url: str) -> None:
    r = await h.client.put(
        "/v1/channel-accounts/hook",
        json={"channel": "webhook", "config": {"url": url, "secret": SECRET}},
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text


async def setup_email(h: Harness, port: int, *users: str) -> None:
    r = await h.client.put(
        "/v1/channel-accounts/smtp",
        json={"channel": "email", "config": {"host": "127.0.0.1", "port": port, "sender": "noreply@example.com"}},
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    for user in users:
        r = await h.client.put(f"/v1/users/{user}", json={"email": f"{user}@example.com"}, headers=h.admin())
        assert r.status_code in (200, 201), r.text


async def trigger(h: Harness, type_key: str, to: list[str], **data: Any) -> str:
    r = await h.trigger({"type": type_key, "to": to, "data": data})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def deliveries_of(h: Harness, notification_id: str) -> list[dict[str, Any]]:
    """Through the API, as the business system sees them."""
    r = await h.client.get(f"/v1/notifications/{notification_id}", headers=h.reader())
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


async def one_delivery(h: Harness, notification_id: str, channel: str = "webhook") -> dict[str, Any]:
    (found,) = [d for d in await deliveries_of(h, notification_id) if d["channel"] == channel]
    return found


async def outcomes(h: Harness, ids: list[str]) -> list[tuple[str, str | None]]:
    """(status, reason) of every delivery of these notifications."""
    async with h.herald.db.read() as conn:
        rows = await conn.execute(
            select(deliveries.c.status, deliveries.c.reason).where(deliveries.c.notification_id.in_(ids))
        )
        return [(r.status, r.reason) for r in rows]


async def make_all_due(h: Harness) -> None:
    async with h.herald.db.write() as conn:
        await conn.execute(update(deliveries).where(deliveries.c.status == "pending").values(next_attempt_at=utcnow()))


# -- frequency caps -------------------------------------------------------------------------------


async def test_fifty_concurrent_triggers_against_a_cap_of_three_send_exactly_three(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.shipped", ["webhook"], {}, caps=[{"channel": "webhook", "per": "day", "max": 3}])
    ids = await asyncio.gather(*(trigger(harness, "order.shipped", ["u1"], n=i) for i in range(50)))

    # Two workers of two Herald instances (two processes' worth: own pools, own counters clients),
    # each with a few slots, so both hold deliveries of the same user at the same moment.
    settings = harness.herald.settings
    settings.worker_concurrency = settings.worker_batch_size = 8
    second = Herald(settings)
    counted = [await slots.use(harness.herald), await slots.use(second)]
    workers = [Worker(harness.herald), Worker(second)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(60):
            while any(s in ("pending", "sending") for s, _ in await outcomes(harness, ids)):
                await asyncio.sleep(0.1)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
        await second.close()

    found = await outcomes(harness, ids)
    assert len(receiver.requests) == 3, found
    assert found.count(("sent", None)) == 3
    assert found.count(("skipped", "frequency_cap")) == 47
    assert all(c.takes > 0 for c in counted), [c.takes for c in counted]  # both workers decided
    skipped = [d for i in ids for d in await deliveries_of(harness, i) if d["status"] == "skipped"]
    assert {d["reason_detail"] for d in skipped} == {skipped[0]["reason_detail"]}
    assert "at most 3" in skipped[0]["reason_detail"]
    # suppressed before any send: never a sent attempt (a loaded machine may log a retry first, when a
    # worker's lease ran out while it waited for the counters and the other worker took the delivery)
    assert all(a["outcome"] != "sent" for d in skipped for a in d["attempt_log"]), skipped


async def test_caps_per_channel_and_over_all_channels_count_per_type(
    harness: Harness, webhook: tuple[Receiver, str], mailbox: tuple[Mailbox, int], slots: Slots
) -> None:
    receiver, url = webhook
    box, port = mailbox
    await setup_hook(harness, url)
    await setup_email(harness, port, "u1")
    caps = [{"channel": "webhook", "per": "hour", "max": 1}, {"channel": None, "per": "day", "max": 3}]
    for key in ("order.shipped", "order.paid"):
        await harness.put_type(key, ["webhook", "email"], {"email": EMAIL_TEMPLATE}, caps=caps)

    first = await trigger(harness, "order.shipped", ["u1"], order=1)
    await harness.drain()
    second = await trigger(harness, "order.shipped", ["u1"], order=2)
    await harness.drain()
    third = await trigger(harness, "order.shipped", ["u1"], order=3)
    await harness.drain()
    other_type = await trigger(harness, "order.paid", ["u1"], order=4)
    await harness.drain()

    def by_channel(found: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
        return {d["channel"]: (d["status"], d["reason"]) for d in found}

    assert by_channel(await deliveries_of(harness, first)) == {"webhook": ("sent", None), "email": ("sent", None)}
    assert by_channel(await deliveries_of(harness, second)) == {
        "webhook": ("skipped", "frequency_cap"),  # one webhook an hour
        "email": ("sent", None),  # the third send of the type today
    }
    assert by_channel(await deliveries_of(harness, third)) == {
        "webhook": ("skipped", "frequency_cap"),
        "email": ("skipped", "frequency_cap"),  # three a day on all channels together
    }
    assert "on webhook" in (await one_delivery(harness, third))["reason_detail"]
    assert "all channels" in (await one_delivery(harness, third, "email"))["reason_detail"]
    # another type's sends are counted apart
    assert by_channel(await deliveries_of(harness, other_type)) == {"webhook": ("sent", None), "email": ("sent", None)}
    assert len(receiver.requests) == 2 and len(box.messages) == 3


async def test_caps_are_per_user(harness: Harness, webhook: tuple[Receiver, str], slots: Slots) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.shipped", ["webhook"], {}, caps=[{"channel": None, "per": "hour", "max": 1}])
    first = await trigger(harness, "order.shipped", ["u1", "u2"], n=1)
    await harness.drain()
    second = await trigger(harness, "order.shipped", ["u1", "u2", "u3"], n=2)
    await harness.drain()
    assert sorted(await outcomes(harness, [first])) == [("sent", None)] * 2
    assert sorted(await outcomes(harness, [second])) == [("sent", None)] + [("skipped", "frequency_cap")] * 2
    assert len(receiver.requests) == 3


# -- throttle -------------------------------------------------------------------------------------


async def test_throttle_counts_every_channel_of_the_type_per_user(
    harness: Harness, webhook: tuple[Receiver, str], mailbox: tuple[Mailbox, int], slots: Slots
) -> None:
    receiver, url = webhook
    box, port = mailbox
    await setup_hook(harness, url)
    await setup_email(harness, port, "u1", "u2")
    throttle = {"max": 3, "window_seconds": 3600}
    await harness.put_type("comment.created", ["webhook", "email"], {"email": EMAIL_TEMPLATE}, throttle=throttle)
    await harness.put_type("order.paid", ["webhook"], {})

    ids = [await trigger(harness, "comment.created", ["u1"], order=i) for i in range(3)]
    await harness.drain()
    found = await outcomes(harness, ids)
    assert found.count(("sent", None)) == 3 and found.count(("skipped", "throttle")) == 3
    every = [d for i in ids for d in await deliveries_of(harness, i)]
    detail = next(d for d in every if d["reason"] == "throttle")
    assert "at most 3" in detail["reason_detail"] and "3600 s" in detail["reason_detail"]

    # another user, and another type for the same user, are not throttled by these
    u2 = await trigger(harness, "comment.created", ["u2"], order=9)
    plain = await trigger(harness, "order.paid", ["u1"])
    await harness.drain()
    assert await outcomes(harness, [u2]) == [("sent", None)] * 2
    assert await outcomes(harness, [plain]) == [("sent", None)]
    assert len(receiver.requests) + len(box.messages) == 3 + 2 + 1


# -- dedup ----------------------------------------------------------------------------------------


async def test_the_same_content_within_the_window_is_sent_once(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    template = {"webhook": {"title": "订单 ${order} 已发货"}}
    await harness.put_type("order.shipped", ["webhook"], template, dedup_seconds=1)

    first = await trigger(harness, "order.shipped", ["u1", "u2"], order="1")
    await harness.drain()
    again = await trigger(harness, "order.shipped", ["u1"], order="1")
    other = await trigger(harness, "order.shipped", ["u1"], order="2")
    await harness.drain()
    assert await outcomes(harness, [first]) == [("sent", None)] * 2
    duplicate = await one_delivery(harness, again)
    assert (duplicate["status"], duplicate["reason"], duplicate["attempt_log"]) == ("skipped", "dedup", [])
    assert "webhook" in duplicate["reason_detail"] and "1 s" in duplicate["reason_detail"]
    assert await outcomes(harness, [other]) == [("sent", None)]

    await asyncio.sleep(1.1)  # the window has passed: the same content goes out again
    later = await trigger(harness, "order.shipped", ["u1"], order="1")
    await harness.drain()
    assert await outcomes(harness, [later]) == [("sent", None)]
    assert [r.json()["data"]["content"]["title"] for r in receiver.requests] == [
        "订单 1 已发货",
        "订单 1 已发货",
        "订单 2 已发货",
        "订单 1 已发货",
    ]


async def test_ten_identical_triggers_at_once_send_one(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.shipped", ["webhook"], {}, dedup_seconds=600)  # no template: the data is compared
    ids = await asyncio.gather(*(trigger(harness, "order.shipped", ["u1"], order="7") for _ in range(10)))
    different = await trigger(harness, "order.shipped", ["u1"], order="8")
    await asyncio.gather(harness.drain(), harness.drain())
    found = await outcomes(harness, ids)
    assert found.count(("sent", None)) == 1 and found.count(("skipped", "dedup")) == 9
    assert await outcomes(harness, [different]) == [("sent", None)]
    assert len(receiver.requests) == 2


# -- slots held by a delivery ---------------------------------------------------------------------


@pytest.mark.usefixtures("slow_retries")
async def test_a_retried_delivery_keeps_its_slot_and_takes_no_second(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.shipped", ["webhook"], {}, caps=[{"channel": "webhook", "per": "day", "max": 2}])

    receiver.status = 503
    retried = await trigger(harness, "order.shipped", ["u1"], n=1)
    await harness.drain()
    d = await one_delivery(harness, retried)
    assert (d["status"], d["attempts"]) == ("pending", 1)

    receiver.status = 200
    sent = await trigger(harness, "order.shipped", ["u1"], n=2)
    await harness.drain()
    capped = await trigger(harness, "order.shipped", ["u1"], n=3)
    await harness.drain()
    assert await outcomes(harness, [sent]) == [("sent", None)]
    assert await outcomes(harness, [capped]) == [("skipped", "frequency_cap")]  # the retry holds a slot

    await make_all_due(harness)
    await harness.drain()
    d = await one_delivery(harness, retried)
    assert (d["status"], d["attempts"]) == ("sent", 2)  # passed again as itself, with the cap full
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry", "sent"]
    late = await trigger(harness, "order.shipped", ["u1"], n=4)
    await harness.drain()
    assert await outcomes(harness, [late]) == [("skipped", "frequency_cap")]
    assert len(receiver.requests) == 3  # the failed try, then two sends
    if slots.backend == "database":
        async with harness.herald.db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(rule_slots))).scalar_one() == 2


async def test_a_send_that_fails_gives_its_slot_back(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type(
        "order.shipped", ["webhook"], {}, caps=[{"channel": "webhook", "per": "day", "max": 1}], dedup_seconds=600
    )
    receiver.status = 400  # refused for good: the user never got it
    failed = await trigger(harness, "order.shipped", ["u1"], n=1)
    await harness.drain()
    assert (await one_delivery(harness, failed))["status"] == "failed"

    receiver.status = 200
    same_content = await trigger(harness, "order.shipped", ["u1"], n=1)  # not a duplicate of a failed send
    await harness.drain()
    capped = await trigger(harness, "order.shipped", ["u1"], n=2)
    await harness.drain()
    assert await outcomes(harness, [same_content]) == [("sent", None)]
    assert await outcomes(harness, [capped]) == [("skipped", "frequency_cap")]


async def test_a_delivery_claimed_again_after_a_crash_uses_the_slot_it_took(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.shipped", ["webhook"], {}, caps=[{"channel": "webhook", "per": "day", "max": 1}])
    crashed = await trigger(harness, "order.shipped", ["u1"], n=1)
    delivery_id = (await one_delivery(harness, crashed))["id"]
    # a worker took the slot for it, then died before sending: the slot stays, held by its id
    cap = cap_window(Cap("webhook", CapPeriod.DAY, 1), "order.shipped", "u1")
    assert await harness.herald.rule_counters.take(delivery_id, [cap]) is None

    await harness.drain()
    assert await outcomes(harness, [crashed]) == [("sent", None)]
    other = await trigger(harness, "order.shipped", ["u1"], n=2)
    await harness.drain()
    assert await outcomes(harness, [other]) == [("skipped", "frequency_cap")]
    assert len(receiver.requests) == 1


@pytest.mark.usefixtures("slow_retries")
async def test_counters_out_of_reach_retry_the_delivery_later_and_nothing_else(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.shipped", ["webhook"], {}, caps=[{"channel": "webhook", "per": "day", "max": 1}])
    await harness.put_type("order.paid", ["webhook"], {})
    await harness.herald.rule_counters.aclose()
    harness.herald.rule_counters = RedisRuleCounters("redis://127.0.0.1:1/0")  # nothing listens there

    limited = await trigger(harness, "order.shipped", ["u1"], n=1)
    plain = await trigger(harness, "order.paid", ["u1"])
    await harness.drain()
    d = await one_delivery(harness, limited)
    assert (d["status"], d["attempts"]) == ("pending", 1)  # not sent unchecked, not lost
    assert "delivery rules unavailable" in d["last_error"]
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry"]
    assert await outcomes(harness, [plain]) == [("sent", None)]  # the failure stays with that delivery
    assert len(receiver.requests) == 1

    await harness.herald.rule_counters.aclose()
    harness.herald.rule_counters = DatabaseRuleCounters(harness.herald.db)  # back
    await make_all_due(harness)
    await harness.drain()
    assert await outcomes(harness, [limited]) == [("sent", None)]
    assert len(receiver.requests) == 2


# -- cost and upkeep ------------------------------------------------------------------------------


async def test_a_type_without_counted_rules_takes_no_slot(
    harness: Harness, webhook: tuple[Receiver, str], slots: Slots
) -> None:
    _, url = webhook
    await setup_hook(harness, url)
    await harness.put_type("order.paid", ["webhook"], {})
    plain = await trigger(harness, "order.paid", ["u1", "u2"])
    await harness.drain()
    assert await outcomes(harness, [plain]) == [("sent", None)] * 2
    assert isinstance(harness.herald.rule_counters, CountingCounters)
    assert harness.herald.rule_counters.takes == 0


async def test_the_worker_purges_expired_slots(harness: Harness) -> None:
    now = utcnow()
    async with harness.herald.db.write() as conn:
        await conn.execute(
            insert(rule_slots),
            [
                {"key": "cap:old", "holder": "dlv_1", "expires_at": now - timedelta(seconds=1)},
                {"key": "cap:live", "holder": "dlv_2", "expires_at": now + timedelta(hours=1)},
            ],
        )
    await Worker(harness.herald).run_once()  # the first round does the housekeeping
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(rule_slots.c.key))).scalars().all() == ["cap:live"]
