"""Event webhooks: message.sent / failed / read reach the business system, signed, and retried."""

from __future__ import annotations

from sqlalchemy import select, update

from herald.store.tables import jobs
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.engine.test_delivery import setup_webhook
from tests.support import SECRET, Receiver


async def subscribe(h: Harness, url: str, events: list[str]) -> None:
    r = await h.client.put(
        "/v1/event-webhooks/erp", json={"url": url, "secret": SECRET, "events": events}, headers=h.admin()
    )
    assert r.status_code == 200, r.text
    assert r.json()["secret"] == "********" and r.json()["events"] == sorted(events)


async def test_sent_and_failed_events_are_signed_and_carry_the_delivery(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)  # the delivery channel posts to the same receiver
    await subscribe(harness, url + "/events", ["message.sent", "message.failed"])
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}})
    await harness.drain()
    events = [q for q in receiver.requests if q.path.endswith("/events")]
    assert len(events) == 1 and events[0].signature_valid
    body = events[0].json()
    assert body["type"] == "message.sent"
    assert body["data"]["notification_id"] == r.json()["id"] and body["data"]["user_id"] == "u1"
    assert events[0].headers["webhook-id"].startswith("evt_")

    receiver.status = 400  # the delivery is refused terminally: message.failed; the event POST too
    await harness.trigger({"type": "order.shipped", "to": ["u2"], "data": {}})
    await harness.drain()
    failed = [q.json() for q in receiver.requests if q.path.endswith("/events")][1:]
    assert [e["type"] for e in failed] == ["message.failed"]
    assert failed[0]["data"]["code"] == "400"
    async with harness.herald.db.read() as conn:
        statuses = sorted(s for (s,) in await conn.execute(select(jobs.c.status).where(jobs.c.kind == "event")))
    assert statuses == ["done", "failed"]  # a 4xx from the receiver is not retried


async def test_read_event_and_retry_until_the_receiver_is_back(
    harness: Harness, inbox_type: str, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    harness.herald.settings.retry_base_seconds = 60  # the retry waits until the test moves it
    await subscribe(harness, url, ["message.read"])
    await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
    (item,) = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    receiver.status = 503
    await harness.client.post(f"/v1/me/inbox/{item['id']}/read", headers=harness.user("alice"))
    await harness.client.post(f"/v1/me/inbox/{item['id']}/read", headers=harness.user("alice"))  # no second event
    await harness.drain()
    assert len(receiver.requests) == 1
    receiver.status = 200
    async with harness.herald.db.write() as conn:
        await conn.execute(update(jobs).values(run_at=utcnow()))
    await harness.drain()
    assert len(receiver.requests) == 2
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]  # the same event, retried
    assert again.json()["type"] == "message.read" and again.json()["data"]["item_id"] == item["id"]


async def test_no_webhook_no_event_and_bad_input(harness: Harness, inbox_type: str) -> None:
    await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(jobs))).first() is None
    r = await harness.client.put(
        "/v1/event-webhooks/x",
        json={"url": "ftp://x", "secret": "s", "events": ["message.exploded"]},
        headers=harness.admin(),
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"url", "events"}
    r = await harness.client.put(
        "/v1/event-webhooks/x",
        json={"url": "https://erp.example.com/h", "secret": "s", "events": ["message.read"]},
        headers=harness.sender(),
    )
    assert r.status_code == 403
