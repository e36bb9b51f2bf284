"""One delivery fails alone: the reproductions from the delivery-core issue, on both databases.

- a poisoned ``Retry-After`` from one webhook must not resend or delay the emails beside it;
- Redis down in the rate limiter settles only the rate-limited deliveries (attempt counted);
- a channel bug, an unencodable payload: that delivery's trace, nobody else's;
- a hung provider holds one slot: the worker keeps sending the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from herald.channels.base import Channel, OutboundMessage, SendResult
from herald.core.backoff import MAX_RETRY_AFTER_SECONDS
from herald.engine.ratelimit import create_rate_limiter
from herald.engine.worker import Worker
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.engine.test_delivery import EMAIL_TEMPLATE, setup_webhook, status_of
from tests.engine.test_ratelimit import LimitedChannel
from tests.support import SECRET, Mailbox, Receiver


async def rows(h: Harness) -> list[dict[str, Any]]:
    async with h.herald.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(deliveries))).mappings()]


async def make_all_due(h: Harness) -> None:
    async with h.herald.db.write() as conn:
        await conn.execute(update(deliveries).where(deliveries.c.status == "pending").values(next_attempt_at=utcnow()))


async def test_a_poisoned_retry_after_delays_only_its_own_delivery(
    harness: Harness, webhook: tuple[Receiver, str], mailbox: tuple[Mailbox, int]
) -> None:
    receiver, url = webhook
    box, port = mailbox
    receiver.status = 429
    receiver.headers = [(b"retry-after", b"999999999999")]
    await setup_webhook(harness, url)
    r = await harness.client.put(
        "/v1/channel-accounts/smtp",
        json={"channel": "email", "config": {"host": "127.0.0.1", "port": port, "sender": "h@example.com"}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    await harness.put_type("order.paid", ["email"], {"email": EMAIL_TEMPLATE})
    users = [f"u{i}" for i in range(50)]
    for uid in users:
        await harness.client.put(f"/v1/users/{uid}", json={"email": f"{uid}@example.com"}, headers=harness.admin())
    poisoned = await harness.trigger({"type": "order.shipped", "to": ["victim"], "data": {}})
    emails = await harness.trigger({"type": "order.paid", "to": users, "data": {"amount": "1"}})
    assert poisoned.status_code == emails.status_code == 202

    before = utcnow()
    for _ in range(5):  # several rounds: nothing may come back to be sent again
        await harness.drain()
    await asyncio.sleep(0.2)

    counts = Counter(box.delivery_ids())
    assert len(counts) == 50 and set(counts.values()) == {1}, counts.most_common(3)
    status = await status_of(harness, emails.json()["id"])
    assert {d["status"] for d in status["deliveries"]} == {"sent"}
    (hook,) = (await status_of(harness, poisoned.json()["id"]))["deliveries"]
    assert hook["status"] == "pending" and hook["attempts"] == 1 and "429" in hook["last_error"]
    retry_at = hook["next_attempt_at"]
    from datetime import datetime

    assert datetime.fromisoformat(retry_at) <= before + timedelta(seconds=MAX_RETRY_AFTER_SECONDS + 60)
    assert len(receiver.requests) == 1


async def test_redis_down_in_the_rate_limiter_settles_only_those_deliveries(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    limited = LimitedChannel()
    harness.herald.channels["limited"] = limited
    harness.herald.rate_limiter = create_rate_limiter("redis://127.0.0.1:1/0")  # nothing listens there
    worker_services = Worker(harness.herald)  # the worker takes the limiter it is given
    r = await harness.client.put(
        "/v1/channel-accounts/acct", json={"channel": "limited", "config": {"token": "t"}}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    await harness.put_type("limited.alert", ["limited"], {})
    hooks = await harness.trigger({"type": "order.shipped", "to": [f"w{i}" for i in range(10)], "data": {}})
    alerts = await harness.trigger({"type": "limited.alert", "to": ["a", "b", "c"], "data": {}})
    assert hooks.status_code == alerts.status_code == 202

    await worker_services.run_once()
    assert len(receiver.requests) == 10
    assert len({req.headers["webhook-id"] for req in receiver.requests}) == 10
    assert {d["status"] for d in (await status_of(harness, hooks.json()["id"]))["deliveries"]} == {"sent"}
    held = (await status_of(harness, alerts.json()["id"]))["deliveries"]
    assert {d["status"] for d in held} == {"pending"}
    assert all(d["attempts"] == 1 and d["attempt_log"][0]["outcome"] == "retry" for d in held)
    assert all("Error" in (d["last_error"] or "") for d in held)
    assert limited.sent == []

    # Redis stays down: the crash-loop guard ends them after max_attempts, nothing else is resent
    for _ in range(harness.herald.settings.max_attempts + 1):
        await make_all_due(harness)
        await harness.drain()
    held = (await status_of(harness, alerts.json()["id"]))["deliveries"]
    assert {d["status"] for d in held} == {"failed"}
    assert all(d["attempts"] == harness.herald.settings.max_attempts for d in held)
    assert len(receiver.requests) == 10
    await harness.herald.rate_limiter.aclose()


class Scripted(Channel):
    """Behaves per recipient id: ``bug`` raises KeyError, ``surrogate`` cannot encode, ``hang``
    never answers, anyone else is sent at once."""

    name = "scripted"
    requires_template = False
    requires_account = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        who = message.recipient.id
        if who.startswith("bug"):
            raise KeyError("no such column")
        if who.startswith("surrogate"):
            "\ud800".encode()
        if who.startswith("hang"):
            await asyncio.Event().wait()
        self.sent.append((who, time.monotonic()))
        return SendResult(provider_message_id=f"ok-{who}")


async def test_a_channel_bug_and_an_unencodable_payload_stay_in_their_own_trace(harness: Harness) -> None:
    channel = Scripted()
    harness.herald.channels["scripted"] = channel
    await harness.put_type("scripted.t", ["scripted"], {})
    r = await harness.trigger({"type": "scripted.t", "to": ["bug1", "surrogate1", "ok1", "ok2"], "data": {}})
    assert r.status_code == 202, r.text
    assert await Worker(harness.herald).run_once()  # one round: the retry is due again within ms
    by_user = {d["user_id"]: d for d in (await status_of(harness, r.json()["id"]))["deliveries"]}
    assert by_user["ok1"]["status"] == by_user["ok2"]["status"] == "sent"
    bug = by_user["bug1"]
    assert bug["status"] == "pending" and bug["attempts"] == 1 and "KeyError" in bug["last_error"]
    assert bug["attempt_log"][0]["outcome"] == "retry"
    # an encoding error is permanent: failed at once, not retried eight times
    enc = by_user["surrogate1"]
    assert enc["status"] == "failed" and enc["attempts"] == 1 and "encode" in enc["last_error"]
    for _ in range(harness.herald.settings.max_attempts):
        await make_all_due(harness)
        await harness.drain()
    by_user = {d["user_id"]: d for d in (await status_of(harness, r.json()["id"]))["deliveries"]}
    assert by_user["bug1"]["status"] == "failed"
    assert by_user["bug1"]["attempts"] == harness.herald.settings.max_attempts
    assert sorted(w for w, _ in channel.sent) == ["ok1", "ok2"]


async def test_a_hung_send_holds_one_slot_not_the_batch(harness: Harness) -> None:
    channel = Scripted()
    harness.herald.channels["scripted"] = channel
    harness.herald.settings.worker_concurrency = 4
    await harness.put_type("scripted.t", ["scripted"], {})
    r = await harness.trigger({"type": "scripted.t", "to": ["hang1", *[f"ok{i}" for i in range(40)]], "data": {}})
    assert r.status_code == 202, r.text
    worker = Worker(harness.herald)
    started = time.monotonic()
    task = asyncio.create_task(worker.run())
    try:
        statuses: Counter[str] = Counter()
        # the hung send times out only after send_timeout (3.75 s here): the rest must not wait for it
        while statuses["sent"] < 40 and time.monotonic() - started < worker.policy.send_timeout - 0.5:
            await asyncio.sleep(0.02)
            statuses = Counter(d["status"] for d in await rows(harness))
        assert statuses == {"sent": 40, "sending": 1}, (statuses, time.monotonic() - started)
    finally:
        task.cancel()  # a hard stop: what is in flight is handed back at once
        with contextlib.suppress(asyncio.CancelledError):
            await task
    (hung,) = [d for d in await rows(harness) if d["user_id"] == "hang1"]
    assert hung["status"] == "pending" and hung["attempts"] == 0  # handed back unattempted


async def test_a_graceful_stop_finishes_what_is_in_flight(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    receiver.delay = 0.5
    r = await harness.trigger({"type": "order.shipped", "to": ["a", "b", "c"], "data": {}})
    worker = Worker(harness.herald)
    task = asyncio.create_task(worker.run())
    for _ in range(100):
        if len(receiver.requests) == 3:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert {d["status"] for d in (await status_of(harness, r.json()["id"]))["deliveries"]} == {"sent"}


async def test_webhook_accounts_are_destinations_not_failover(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    """A retry of a delivery sent to the default webhook goes to the same webhook, never to another one."""
    receiver, url = webhook
    for name, default in (("hook-a", True), ("hook-b", False)):
        r = await harness.client.put(
            f"/v1/channel-accounts/{name}",
            json={"channel": "webhook", "config": {"url": f"{url}/{name}", "secret": SECRET}, "default": default},
            headers=harness.admin(),
        )
        assert r.status_code == 200, r.text
    await harness.put_type("order.shipped", ["webhook"], {})
    receiver.status = 503
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    await harness.drain()
    receiver.status = 200
    await make_all_due(harness)
    await harness.drain()
    assert [req.path for req in receiver.requests] == ["/hook/hook-a", "/hook/hook-a"]
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "sent" and d["account"] == "hook-a"
    assert [a["account"] for a in d["attempt_log"]] == ["hook-a", "hook-a"]


class AddressedChannel(LimitedChannel):
    """Reaches only users with a phone; limited to 2 sends a minute."""

    name = "addressed"

    def missing_address(self, recipient: Any) -> str | None:
        return None if recipient.phone else "no phone number"


async def test_an_unreachable_recipient_is_skipped_before_the_budget(harness: Harness) -> None:
    channel = AddressedChannel()
    harness.herald.channels["addressed"] = channel
    r = await harness.client.put(
        "/v1/channel-accounts/acct", json={"channel": "addressed", "config": {"token": "t"}}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    await harness.put_type("addressed.t", ["addressed"], {})
    await harness.client.put("/v1/users/p1", json={"phone": "+8613800000001"}, headers=harness.admin())
    await harness.client.put("/v1/users/p2", json={"phone": "+8613800000002"}, headers=harness.admin())
    r = await harness.trigger({"type": "addressed.t", "to": ["n1", "n2", "n3", "p1", "p2"], "data": {}})
    await harness.drain()
    by_user = {d["user_id"]: d for d in (await status_of(harness, r.json()["id"]))["deliveries"]}
    # three unreachable users did not use up the budget of two: both reachable ones went out
    assert {u: d["status"] for u, d in by_user.items()} == {
        "n1": "skipped",
        "n2": "skipped",
        "n3": "skipped",
        "p1": "sent",
        "p2": "sent",
    }
    assert (by_user["n1"]["reason"], by_user["n1"]["reason_detail"]) == ("no_address", "no phone number") and by_user[
        "n1"
    ]["account"] == "acct"
    assert len(channel.sent) == 2
