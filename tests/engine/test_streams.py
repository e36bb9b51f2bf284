"""What open streams receive, on both databases and both backplanes: each user only their own events,
items as the inbox returns them, counts as /counts returns them, one backplane message per chunk and
per announcement whatever the audience, and the replay of what a reconnecting client missed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from herald.engine import live
from herald.engine.streams import LiveFeed
from herald.realtime.hub import Event, Stream
from herald.store.types import utcnow
from tests.conftest import REDIS_URL, Harness, make_settings, running_harness

USERS_OF_AN_ANNOUNCEMENT = 300


def feed(h: Harness) -> LiveFeed:
    return h.client._transport.app.state.live_feed  # type: ignore[attr-defined,no-any-return]


async def collect(stream: Stream, until: Callable[[list[Event]], bool], timeout: float = 10) -> list[Event]:
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {[e.name for e in got]}"
        await stream.wait(min(left, 0.2))
        got += stream.take()
    return got


def named(events: list[Event], name: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events if e.name == name]


def has(*names: str) -> Callable[[list[Event]], bool]:
    return lambda got: all(any(e.name == n for e in got) for n in names)


def all_of(*conditions: Callable[[list[Event]], bool]) -> Callable[[list[Event]], bool]:
    return lambda got: all(condition(got) for condition in conditions)


def counted(total: int, **fields: Any) -> Callable[[list[Event]], bool]:
    """Until a ``counts`` event says ``total`` (events of earlier changes may still be on their way)."""
    return lambda got: any(
        c["total"] == total and all(c[k] == v for k, v in fields.items()) for c in named(got, "counts")
    )


async def settle(h: Harness) -> None:
    """Let what was published go through the backplane (and anything it causes)."""
    await h.herald.realtime.publisher.flush()
    await asyncio.sleep(0.3)


class Published:
    """Every message handed to the backplane of one Herald."""

    def __init__(self, h: Harness) -> None:
        self.messages: list[dict[str, Any]] = []
        backplane = h.herald.realtime.backplane
        original = backplane.publish

        async def recording(message: str) -> None:
            self.messages.append(json.loads(message))
            await original(message)

        backplane.publish = recording  # type: ignore[method-assign]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["k"] == kind]


async def put_inbox_type(h: Harness, key: str = "order.paid") -> str:
    await h.put_type(key, ["inapp"], {"inapp": {"title": "订单 ${order} 已支付", "summary": "${amount} 元"}})
    return key


@pytest.fixture
async def rt(realtime_harness: Harness) -> Harness:
    await put_inbox_type(realtime_harness)
    return realtime_harness


async def test_a_new_item_reaches_its_user_only_as_the_inbox_returns_it(rt: Harness) -> None:
    hub = rt.herald.realtime.hub
    alice, alice_tab, bob = hub.open("alice"), hub.open("alice"), hub.open("bob")
    r = await rt.trigger({"type": "order.paid", "to": ["alice"], "data": {"order": "o-1", "amount": "9.90"}})
    assert r.status_code == 202, r.text
    got = await collect(alice, all_of(has("inbox.new"), counted(1)))
    inbox = (await rt.client.get("/v1/me/inbox", headers=rt.user("alice"))).json()
    counts = (await rt.client.get("/v1/me/inbox/counts", headers=rt.user("alice"))).json()
    assert named(got, "inbox.new") == inbox["items"]
    assert (
        named(got, "counts")[-1]
        == counts
        == {
            "total": 1,
            "by_category": {"reminder": 1, "announcement": 0, "direct": 0},
            "unseen": 1,
        }
    )
    assert next(e.name for e in await collect(alice_tab, has("inbox.new"))) == "inbox.new"  # every tab
    await settle(rt)
    assert bob.take() == []  # never another user's


async def test_a_fan_out_is_one_backplane_message_per_chunk(database_url: str, backplane_url: str | None) -> None:
    settings = make_settings(database_url, redis_url=backplane_url, inline_fanout_limit=1, fanout_chunk_size=100)
    async with running_harness(settings) as h:
        await put_inbox_type(h)
        published = Published(h)
        users = [f"u{n:03}" for n in range(250)]
        hub = h.herald.realtime.hub
        first, last, outsider = hub.open(users[0]), hub.open(users[-1]), hub.open("outsider")
        r = await h.trigger({"type": "order.paid", "to": users, "data": {"order": "o", "amount": "1"}})
        assert r.status_code == 202, r.text
        await h.drain()  # the fan-out job, in three chunks
        for stream, user in ((first, users[0]), (last, users[-1])):
            got = await collect(stream, has("inbox.new", "counts"))
            inbox = (await h.client.get("/v1/me/inbox", headers=h.user(user))).json()
            assert named(got, "inbox.new") == inbox["items"]
        await settle(h)
        chunks = published.of(live.ITEMS)
        assert [len(m["u"]) for m in chunks] == [100, 100, 50]
        assert outsider.take() == []


async def test_marks_send_updates_removals_and_counts(rt: Harness) -> None:
    stream = rt.herald.realtime.hub.open("alice")
    for n in range(3):
        await rt.trigger({"type": "order.paid", "to": ["alice"], "data": {"order": f"o-{n}", "amount": "1"}})
    await collect(stream, all_of(lambda got: len(named(got, "inbox.new")) == 3, counted(3)))
    items = (await rt.client.get("/v1/me/inbox", headers=rt.user("alice"))).json()["items"]

    r = await rt.client.post(f"/v1/me/inbox/{items[0]['id']}/read", headers=rt.user("alice"))
    got = await collect(stream, counted(2))
    assert named(got, "inbox.updated") == [r.json()] and r.json()["read"] is True

    await rt.client.delete(f"/v1/me/inbox/{items[1]['id']}", headers=rt.user("alice"))
    got = await collect(stream, counted(1))
    assert named(got, "inbox.removed") == [{"id": items[1]["id"]}]

    r = await rt.client.post("/v1/me/inbox/seen", headers=rt.user("alice"))
    assert r.status_code == 200 and r.json() == {"updated": 1}
    got = await collect(stream, counted(1, unseen=0))
    assert [e.name for e in got] == ["counts"]
    assert (await rt.client.get("/v1/me/inbox/counts", headers=rt.user("alice"))).json()["unseen"] == 0

    await rt.client.post("/v1/me/inbox/read-all", json={}, headers=rt.user("alice"))
    got = await collect(stream, counted(0))
    assert [e.name for e in got] == ["counts"]  # one event, not one per item


async def test_another_users_item_cannot_be_touched_and_nobody_hears_of_it(rt: Harness) -> None:
    hub = rt.herald.realtime.hub
    alice, bob = hub.open("alice"), hub.open("bob")
    await rt.trigger({"type": "order.paid", "to": ["bob"], "data": {"order": "o", "amount": "1"}})
    await collect(bob, has("counts"))
    bobs = (await rt.client.get("/v1/me/inbox", headers=rt.user("bob"))).json()["items"][0]["id"]
    for action in ("read", "archive"):
        r = await rt.client.post(f"/v1/me/inbox/{bobs}/{action}", headers=rt.user("alice"))
        assert r.status_code == 404
    assert (await rt.client.delete(f"/v1/me/inbox/{bobs}", headers=rt.user("alice"))).status_code == 404
    await settle(rt)
    assert alice.take() == [] and bob.take() == []


async def test_an_announcement_to_everyone_is_one_backplane_message(rt: Harness) -> None:
    await settle(rt)  # the fixture's type edit has gone out first (an ``invalidate`` message)
    published = Published(rt)
    hub = rt.herald.realtime.hub
    streams = {f"u{n}": hub.open(f"u{n}") for n in range(USERS_OF_AN_ANNOUNCEMENT)}
    r = await rt.client.post(
        "/v1/announcements", json={"title": "系统升级", "audience": {"all": True}}, headers=rt.admin()
    )
    assert r.status_code == 201, r.text
    announcement_id = r.json()["id"]
    for stream in streams.values():
        got = await collect(stream, all_of(has("announcement.new"), counted(1)))
        (item,) = named(got, "announcement.new")
        assert item["id"] == announcement_id and item["category"] == "announcement" and item["read"] is False
    feed_item = (await rt.client.get("/v1/me/inbox", headers=rt.user("u7"))).json()["items"][0]
    assert feed_item == item  # as the inbox returns it
    await settle(rt)
    assert len(published.messages) == 1 and published.messages[0]["k"] == live.ANNOUNCEMENT


async def test_audiences_edits_banners_and_withdrawal(rt: Harness) -> None:
    for user, tags in (("vip", ["vip"]), ("plain", [])):
        r = await rt.client.put(f"/v1/users/{user}", json={"tags": tags}, headers=rt.admin())
        assert r.status_code in (200, 201), r.text
    hub = rt.herald.realtime.hub
    vip, plain = hub.open("vip"), hub.open("plain")
    r = await rt.client.post(
        "/v1/announcements",
        json={"title": "VIP 活动", "kind": "banner", "audience": {"tags": ["vip"]}},
        headers=rt.admin(),
    )
    announcement_id = r.json()["id"]
    got = await collect(vip, all_of(has("announcement.new", "banner.changed"), counted(1)))
    banners = (await rt.client.get("/v1/me/banners", headers=rt.user("vip"))).json()
    assert named(got, "banner.changed") == [banners] and banners["items"][0]["id"] == announcement_id
    await settle(rt)
    assert plain.take() == []  # not in the audience

    # the vip reads it; an edit shows their own read mark
    await rt.client.post(f"/v1/me/inbox/{announcement_id}/read", headers=rt.user("vip"))
    await collect(vip, all_of(has("inbox.updated"), counted(0)))
    await rt.client.patch(f"/v1/announcements/{announcement_id}", json={"title": "VIP 活动 (延期)"}, headers=rt.admin())
    got = await collect(vip, has("announcement.updated", "banner.changed"))
    (updated,) = named(got, "announcement.updated")
    assert updated["title"] == "VIP 活动 (延期)" and updated["read"] is True

    # the audience widens to everyone: new for plain, updated for vip
    await rt.client.patch(f"/v1/announcements/{announcement_id}", json={"audience": {"all": True}}, headers=rt.admin())
    assert named(await collect(plain, has("announcement.new")), "announcement.new")[0]["id"] == announcement_id
    assert named(await collect(vip, has("announcement.updated")), "announcement.updated")

    r = await rt.client.delete(f"/v1/announcements/{announcement_id}", headers=rt.admin())
    assert r.status_code == 204

    def removed_then_banners(got: list[Event]) -> bool:
        names = [e.name for e in got]
        return "announcement.removed" in names and "banner.changed" in names[names.index("announcement.removed") :]

    for stream in (vip, plain):
        got = await collect(stream, all_of(removed_then_banners, counted(0)))
        assert named(got, "announcement.removed") == [{"id": announcement_id}]
        assert named(got, "banner.changed")[-1] == {"items": []}


async def test_counts_for_many_users_match_counts_user_by_user(rt: Harness) -> None:
    await rt.client.put("/v1/users/tagged", json={"tags": ["vip"]}, headers=rt.admin())
    for body in ({"title": "all", "audience": {"all": True}}, {"title": "vip", "audience": {"tags": ["vip"]}}):
        assert (await rt.client.post("/v1/announcements", json=body, headers=rt.admin())).status_code == 201
    await rt.put_type("chat", ["inapp"], {"inapp": {"title": "私信"}}, category="direct")
    await rt.trigger({"type": "order.paid", "to": ["a", "b", "tagged"], "data": {"order": "o", "amount": "1"}})
    await rt.trigger({"type": "chat", "to": ["a", "tagged"], "data": {}})
    items = (await rt.client.get("/v1/me/inbox", headers=rt.user("a"))).json()["items"]
    await rt.client.post(f"/v1/me/inbox/{items[0]['id']}/read", headers=rt.user("a"))
    await rt.client.post(f"/v1/me/inbox/{items[-1]['id']}/archive", headers=rt.user("a"))
    await rt.client.post("/v1/me/inbox/seen", headers=rt.user("b"))
    users = ["a", "b", "tagged", "nobody"]
    many = await feed(rt).counts_many(users)
    for user in users:
        one = (await rt.client.get("/v1/me/inbox/counts", headers=rt.user(user))).json()
        assert many[user] == one, user


async def test_replay_sends_what_was_missed_then_counts(rt: Harness) -> None:
    since = utcnow()
    await rt.trigger({"type": "order.paid", "to": ["alice", "bob"], "data": {"order": "o-1", "amount": "1"}})
    await rt.trigger({"type": "order.paid", "to": ["alice"], "data": {"order": "o-2", "amount": "2"}})
    await rt.client.post("/v1/announcements", json={"title": "公告"}, headers=rt.admin())
    events = await feed(rt).replay("alice", since)
    inbox = (await rt.client.get("/v1/me/inbox", headers=rt.user("alice"))).json()["items"]
    private = [i for i in inbox if i["category"] != "announcement"]
    assert [e.name for e in events] == ["inbox.new", "inbox.new", "announcement.new", "counts"]
    assert named(events, "inbox.new") == list(reversed(private))  # oldest first
    assert named(events, "counts")[0]["total"] == 3

    assert [e.name for e in await feed(rt).replay("alice", None)] == ["sync.required", "counts"]
    old = await feed(rt).replay("alice", utcnow() - timedelta(days=3))
    assert [e.name for e in old][-2:] == ["sync.required", "counts"]


async def test_replay_of_more_than_it_carries_asks_for_a_reload(rt: Harness) -> None:
    since = utcnow()
    for n in range(105):
        await rt.trigger({"type": "order.paid", "to": ["alice"], "data": {"order": f"o-{n}", "amount": "1"}})
    events = await feed(rt).replay("alice", since)
    assert [e.name for e in events][-2:] == ["sync.required", "counts"]
    titles = [i["title"] for i in named(events, "inbox.new")]
    assert len(titles) == 100 and titles[-1] == "订单 o-104 已支付"  # the newest hundred, oldest first


@pytest.mark.skipif(REDIS_URL is None, reason="two processes share the Redis backplane (required under CI=true)")
async def test_an_admin_change_invalidates_every_processs_edge_caches(database_url: str) -> None:
    settings = make_settings(database_url, redis_url=REDIS_URL)
    async with running_harness(settings) as first, running_harness(settings) as other:
        await put_inbox_type(first, "order.paid")
        assert (await other.herald.catalog.get("order.paid")) is not None  # cached over there
        await other.herald.announcements.live(other.herald, utcnow())
        other.herald.catalog.ttl = other.herald.announcements.ttl = 3600  # only the backplane refreshes them now

        await first.client.post("/v1/announcements", json={"title": "新公告"}, headers=first.admin())
        first.herald.cache_changed("catalog")
        started = time.monotonic()
        while time.monotonic() - started < 1:
            anns = await other.herald.announcements.live(other.herald, utcnow())
            if anns and not other.herald.catalog._entries:
                break
            await asyncio.sleep(0.02)
        assert [a["title"] for a in anns] == ["新公告"]
        assert not other.herald.catalog._entries
        assert time.monotonic() - started < 1


async def test_a_stream_resyncs_after_a_gap(rt: Harness) -> None:
    stream = rt.herald.realtime.hub.open("alice")
    await rt.trigger({"type": "order.paid", "to": ["alice"], "data": {"order": "o", "amount": "1"}})
    await collect(stream, has("counts"))
    gap = {"k": "gap", "since": (utcnow() - timedelta(seconds=1)).isoformat()}
    await feed(rt).handle(gap)
    assert stream.resync_since == datetime.fromisoformat(gap["since"])
