"""The worker end to end through the API: email and webhook deliveries, retries, failures, leases."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from herald.core.outcomes import Outcome
from herald.engine.worker import Worker
from herald.store import deliveries as delivery_store
from herald.store.records import Delivery
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.support import SECRET, Mailbox, Receiver

EMAIL_TEMPLATE = {"title": "充值成功 ${amount}", "body": "到账 ${amount} 元", "html": "<p>${amount}</p>"}


async def setup_email(h: Harness, port: int, **type_extra: Any) -> None:
    r = await h.client.put(
        "/v1/channel-accounts/smtp-main",
        json={
            "channel": "email",
            "config": {"host": "127.0.0.1", "port": port, "sender": "Herald 通知 <noreply@example.com>", "timeout": 2},
            "default": True,
        },
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    await h.put_type("order.paid", ["inapp", "email"], {"inapp": {"title": "t"}, "email": EMAIL_TEMPLATE}, **type_extra)
    await h.client.put("/v1/users/u1", json={"email": "u1@example.com", "name": "张三"}, headers=h.admin())


async def setup_webhook(h: Harness, url: str) -> None:
    r = await h.client.put(
        "/v1/channel-accounts/hook",
        json={"channel": "webhook", "config": {"url": url, "secret": SECRET}},
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["secret"] == "********"
    await h.put_type("order.shipped", ["webhook"], {})


async def status_of(h: Harness, notification_id: str) -> dict[str, Any]:
    r = await h.client.get(f"/v1/notifications/{notification_id}", headers=h.reader())
    assert r.status_code == 200, r.text
    return r.json()


async def wait_until_due(h: Harness) -> None:
    """Move every pending retry to now, so tests need not sleep through backoff."""
    async with h.herald.db.write() as conn:
        await conn.execute(update(deliveries).where(deliveries.c.status == "pending").values(next_attempt_at=utcnow()))


async def test_email_is_sent_with_delivery_id_header(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    await setup_email(harness, port)
    r = await harness.trigger({"type": "order.paid", "to": ["u1", "u2"], "data": {"amount": "9.90"}})
    assert r.status_code == 202, r.text
    await harness.drain()
    await asyncio.sleep(0.1)

    status = await status_of(harness, r.json()["id"])
    email = {d["user_id"]: d for d in status["deliveries"] if d["channel"] == "email"}
    assert email["u1"]["status"] == "sent" and email["u1"]["attempts"] == 1
    assert email["u1"]["account"] == "smtp-main"
    assert email["u1"]["attempt_log"][0]["outcome"] == "sent"
    # u2 was created bare by the trigger: no address, so skipped with the reason
    assert (email["u2"]["status"], email["u2"]["reason"]) == ("skipped", "no_address")
    assert "email" in email["u2"]["reason_detail"]
    assert box.delivery_ids() == [email["u1"]["id"]]
    message = box.messages[0]
    assert message["Subject"] == "充值成功 9.90"
    assert "张三" in str(message["To"])


async def test_retryable_failure_backs_off_then_succeeds(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    # far enough out that a slow machine cannot reach it within one drain (wait_until_due skips it)
    harness.herald.settings.retry_base_seconds = harness.herald.settings.retry_max_seconds = 60
    await setup_email(harness, port + 1 if port < 65535 else port - 1)  # nothing listens there
    r = await harness.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    await harness.drain()
    status = await status_of(harness, r.json()["id"])
    (d,) = [d for d in status["deliveries"] if d["channel"] == "email"]
    assert d["status"] == "pending" and d["attempts"] == 1 and d["last_error"]
    assert d["next_attempt_at"] is not None
    assert d["attempt_log"][0]["outcome"] == "retry"

    # the mail server is fixed: the next attempt goes through
    await setup_email(harness, port)
    await wait_until_due(harness)
    await harness.drain()
    status = await status_of(harness, r.json()["id"])
    (d,) = [d for d in status["deliveries"] if d["channel"] == "email"]
    assert d["status"] == "sent" and d["attempts"] == 2
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry", "sent"]
    assert box.delivery_ids() == [d["id"]]


async def test_attempts_are_capped_then_failed(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    _, port = mailbox
    await setup_email(harness, port + 1 if port < 65535 else port - 1)
    r = await harness.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    for _ in range(harness.herald.settings.max_attempts):
        await harness.drain()
        await wait_until_due(harness)
    status = await status_of(harness, r.json()["id"])
    (d,) = [d for d in status["deliveries"] if d["channel"] == "email"]
    assert d["status"] == "failed"
    assert d["attempts"] == harness.herald.settings.max_attempts
    assert len(d["attempt_log"]) == harness.herald.settings.max_attempts
    assert d["reason"] == "attempts_exhausted" and "gave up" in d["reason_detail"]


async def test_webhook_is_signed_and_terminal_errors_fail_at_once(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {"order": "o-1"}})
    await harness.drain()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.signature_valid
    status = await status_of(harness, r.json()["id"])
    (d,) = status["deliveries"]
    assert d["status"] == "sent" and request.headers["webhook-id"] == d["id"]
    assert request.json()["data"]["data"] == {"order": "o-1"}

    receiver.status = 400
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "failed" and d["attempts"] == 1 and "400" in d["last_error"]


async def test_retry_after_is_honoured(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    receiver.status = 429
    receiver.headers = [(b"retry-after", b"120")]
    before = utcnow()
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "pending"
    from datetime import datetime

    assert datetime.fromisoformat(d["next_attempt_at"]) >= before + timedelta(seconds=119)


async def test_no_account_is_skipped_with_reason(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert (d["status"], d["reason"]) == ("skipped", "no_account")
    assert "no 'webhook' channel account" in d["reason_detail"]


async def test_expired_lease_is_claimed_again(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    """A worker that dies mid-send leaves its rows leased; another claims them after the lease."""
    receiver, url = webhook
    await setup_webhook(harness, url)
    await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    now = utcnow()
    async with harness.herald.db.write() as conn:
        dead = await delivery_store.claim_due_deliveries(
            conn, owner="dead-worker", now=now, lease_until=now + timedelta(seconds=30), limit=10
        )
    assert len(dead) == 1
    assert not await Worker(harness.herald).run_once()  # still leased: nothing to do
    async with harness.herald.db.write() as conn:  # time passes: the lease runs out
        await conn.execute(
            update(deliveries).values(
                lease_until=now - timedelta(seconds=1), next_attempt_at=now - timedelta(seconds=1)
            )
        )
    await harness.drain()
    assert len(receiver.requests) == 1
    async with harness.herald.db.read() as conn:
        row = (await conn.execute(select(deliveries))).mappings().one()
    assert row["status"] == "sent" and row["attempts"] == 2
    # the dead worker cannot overwrite the outcome afterwards
    async with harness.herald.db.write() as conn:
        assert not await delivery_store.settle_delivery(
            conn, Delivery.from_row(row), Outcome.failed("late"), owner="dead-worker", started_at=now, now=now
        )


async def test_high_priority_is_claimed_before_normal_and_low(harness: Harness) -> None:
    for key, priority in (("promo", "low"), ("news", "normal"), ("otp", "high")):
        await harness.put_type(key, ["webhook"], {}, priority=priority)
    for key in ("promo", "news", "otp"):
        r = await harness.trigger({"type": key, "to": ["u1"], "data": {}})
        assert r.status_code == 202
    now = utcnow()
    async with harness.herald.db.write() as conn:
        claimed = await delivery_store.claim_due_deliveries(
            conn, owner="w", now=now, lease_until=now + timedelta(seconds=5), limit=1
        )
    assert len(claimed) == 1
    async with harness.herald.db.read() as conn:
        n = (await conn.execute(select(deliveries.c.notification_id).where(deliveries.c.id == claimed[0].id))).scalar()
        from herald.store.notifications import get_notification

        notification = await get_notification(conn, n)
    assert notification is not None and notification["type_key"] == "otp"


async def test_cancel_stops_pending_deliveries(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    r = await harness.trigger({"type": "order.shipped", "to": ["u1", "u2"], "data": {}})
    nid = r.json()["id"]
    r = await harness.client.delete(f"/v1/notifications/{nid}", headers=harness.sender())
    assert r.status_code == 200 and r.json()["cancelled_deliveries"] == 2
    await harness.drain()
    status = await status_of(harness, nid)
    assert {d["status"] for d in status["deliveries"]} == {"cancelled"}


async def test_expired_delivery_is_not_sent(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    r = await harness.trigger(
        {"type": "order.shipped", "to": ["u1"], "data": {}, "expires_at": (utcnow() + timedelta(seconds=1)).isoformat()}
    )
    async with harness.herald.db.write() as conn:
        await conn.execute(update(deliveries).values(expires_at=utcnow() - timedelta(seconds=1)))
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert (d["status"], d["reason"]) == ("skipped", "expired")  # issue 8: a suppression like the others
    assert receiver.requests == []


async def test_hard_shutdown_hands_in_flight_deliveries_back(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    receiver.delay = 5
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    worker = Worker(harness.herald)
    task = asyncio.create_task(worker.run())
    for _ in range(100):
        if receiver.requests:
            break
        await asyncio.sleep(0.05)
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "sending"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "pending" and d["attempts"] == 0


async def test_a_crash_loop_ends_in_failed(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    async with harness.herald.db.write() as conn:
        await conn.execute(update(deliveries).values(attempts=harness.herald.settings.max_attempts))
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert (d["status"], d["reason"]) == ("failed", "attempts_exhausted") and "gave up" in d["reason_detail"]


async def test_an_account_sealed_with_another_key_fails_the_delivery(harness: Harness) -> None:
    from herald.store.secretbox import SecretBox
    from herald.store.tables import channel_accounts

    await setup_webhook(harness, "http://127.0.0.1:9/never")
    async with harness.herald.db.write() as conn:
        await conn.execute(update(channel_accounts).values(config_encrypted=SecretBox("another key").seal("{}")))
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "failed" and "HERALD_SECRET_KEY" in d["last_error"]
