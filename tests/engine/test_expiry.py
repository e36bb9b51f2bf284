"""Rule 10, expiry, end to end on both databases: an expired in-app item leaves the inbox and the
counts on every read path (the routes, the hot middleware, the realtime counts), and an unsent
delivery past its expiry ends ``skipped`` with reason ``expired`` — on time, even when a retry's
backoff would have woken it much later."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from herald.api.views import inbox_item_view
from herald.engine.streams import LiveFeed
from herald.store.types import utcnow
from tests.api.test_hot_inbox import routes_only
from tests.conftest import Harness
from tests.engine.test_delivery import setup_webhook, status_of
from tests.support import Receiver


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - utcnow()).total_seconds()) + 0.05)


def ids(page: dict[str, Any]) -> list[str]:
    return [i["id"] for i in page["items"]]


async def test_an_expired_item_leaves_the_feed_and_the_counts_on_every_read_path(
    harness: Harness, inbox_type: str, database_url: str
) -> None:
    expires = utcnow() + timedelta(seconds=1.5)
    brief = await harness.trigger(
        {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, "expires_at": expires.isoformat()}
    )
    lasting = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "2"}})
    assert brief.status_code == lasting.status_code == 202
    alice = harness.user("alice")
    (brief_item, lasting_item) = (await harness.client.get("/v1/me/inbox", headers=alice)).json()["items"][::-1]
    assert brief_item["expires_at"] is not None and lasting_item["expires_at"] is None
    stats = harness.client._transport.app.state.hot_inbox  # type: ignore[attr-defined]
    live_feed = LiveFeed(harness.herald, inbox_item_view)
    async with routes_only(database_url) as routes:
        for client in (harness.client, routes):
            assert len((await client.get("/v1/me/inbox", headers=alice)).json()["items"]) == 2
            assert (await client.get("/v1/me/inbox/counts", headers=alice)).json()["total"] == 2
        assert (await live_feed.counts_many(["alice"]))["alice"]["total"] == 2

        await sleep_until(expires)
        served = stats["served"]
        for client in (harness.client, routes):
            for query in ("", "?status=unread", "?category=reminder"):
                page = (await client.get(f"/v1/me/inbox{query}", headers=alice)).json()
                assert ids(page) == [lasting_item["id"]], query
            counts = (await client.get("/v1/me/inbox/counts", headers=alice)).json()
            assert counts["total"] == 1 and counts["by_category"]["reminder"] == 1 and counts["unseen"] == 1
        assert stats["served"] == served + 4  # the hot path answered its four reads itself
        realtime = (await live_feed.counts_many(["alice"]))["alice"]
        assert realtime == (await harness.client.get("/v1/me/inbox/counts", headers=alice)).json()

    # gone as an item too: not readable, not markable; the lasting one is
    path = f"/v1/me/inbox/{brief_item['id']}"
    assert (await harness.client.get(path, headers=alice)).status_code == 404
    assert (await harness.client.post(f"{path}/read", headers=alice)).status_code == 404
    assert (await harness.client.delete(path, headers=alice)).status_code == 404
    r = await harness.client.post(f"/v1/me/inbox/{lasting_item['id']}/read", headers=alice)
    assert r.status_code == 200 and r.json()["read"] is True


async def test_another_users_item_is_404_whether_expired_or_not(harness: Harness, inbox_type: str) -> None:
    expires = utcnow() + timedelta(seconds=1)
    await harness.trigger(
        {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, "expires_at": expires.isoformat()}
    )
    (item,) = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert (await harness.client.get(f"/v1/me/inbox/{item['id']}", headers=harness.user("bob"))).status_code == 404
    await sleep_until(expires)
    for user in ("alice", "bob"):
        assert (await harness.client.get(f"/v1/me/inbox/{item['id']}", headers=harness.user(user))).status_code == 404


async def test_a_retry_due_after_the_expiry_is_settled_expired_at_the_expiry(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    harness.herald.settings.retry_base_seconds = 3600  # a backoff far past the expiry
    harness.herald.settings.retry_max_seconds = 7200
    receiver.status = 503
    expires = utcnow() + timedelta(seconds=2)
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}, "expires_at": expires.isoformat()})
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert d["status"] == "pending" and d["attempts"] == 1
    # due again at the expiry, not in an hour
    assert datetime.fromisoformat(d["next_attempt_at"]) == expires
    await harness.drain()  # not due yet: nothing is tried
    assert len(receiver.requests) == 1

    await sleep_until(expires)
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    assert (d["status"], d["reason"]) == ("skipped", "expired")
    assert d["next_attempt_at"] is None
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry"]  # the expiry is no attempt
    assert len(receiver.requests) == 1


async def test_a_retry_due_before_the_expiry_keeps_its_backoff(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    harness.herald.settings.retry_base_seconds = 60
    harness.herald.settings.retry_max_seconds = 60
    receiver.status = 503
    expires = utcnow() + timedelta(hours=1)
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}, "expires_at": expires.isoformat()})
    await harness.drain()
    (d,) = (await status_of(harness, r.json()["id"]))["deliveries"]
    due = datetime.fromisoformat(d["next_attempt_at"])
    assert d["status"] == "pending" and due < expires
    assert timedelta(seconds=20) < due - utcnow() <= timedelta(seconds=61)
