"""Merging in the inbox (issue 8, rule 4), end to end through the API on each database: events of
a merging type for one user and key, within the window, while the item is unread, update one item
(count, actors, title re-rendered, moved to the top, unseen again); anything else makes a new item."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from herald.engine import trigger as trigger_engine
from herald.engine.streams import INBOX_NEW, INBOX_UPDATED
from herald.store.tables import inbox_items
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.engine.test_streams import collect, has, named

LIKED = "post.liked"
ZH = {
    "title": "{% if count > 1 %}${actors}等 ${count} 人赞了你的文章{% else %}${actors}赞了你的文章{% endif %}",
    "summary": "《${post.title}》",
    "body": "最新：${actors[0].name}",
}
EN = {"title": "${actors} and others (${count}) liked your post", "summary": "${post.title}"}
NAMES = ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十", "郑十一", "王十二"]


async def put_liked(h: Harness, *, window: int = 3600, key: str = "${post.id}", **extra: Any) -> None:
    await h.put_type(LIKED, ["inapp"], {}, merge={"key": key, "window_seconds": window}, **extra)
    for locale, fields in (("zh-CN", ZH), ("en", EN)):
        r = await h.client.put(
            f"/v1/notification-types/{LIKED}/templates/inapp?locale={locale}", json=fields, headers=h.admin()
        )
        assert r.status_code == 200, r.text


@pytest.fixture
async def liked(harness: Harness) -> Harness:
    await put_liked(harness)
    return harness


def like(post: str, n: int, to: str = "alice", **extra: Any) -> dict[str, Any]:
    return {
        "type": LIKED,
        "to": [to],
        "data": {"post": {"id": post, "title": f"文章 {post}"}},
        "actor": {"id": f"u{n}", "name": NAMES[n % len(NAMES)]},
        **extra,
    }


async def send(h: Harness, body: dict[str, Any]) -> str:
    r = await h.trigger(body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def inbox(h: Harness, user: str = "alice", query: str = "") -> list[dict[str, Any]]:
    r = await h.client.get(f"/v1/me/inbox{query}", headers=h.user(user))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def counts(h: Harness, user: str = "alice") -> dict[str, Any]:
    return dict((await h.client.get("/v1/me/inbox/counts", headers=h.user(user))).json())


async def test_events_within_the_window_update_one_item(liked: Harness) -> None:
    h = liked
    await send(h, like("p1", 0))
    [item] = await inbox(h)
    assert (item["count"], item["title"], item["actors"]) == (1, "张三赞了你的文章", [{"id": "u0", "name": "张三"}])
    for n in range(1, 10):
        await send(h, like("p1", n))
    [merged] = await inbox(h)
    assert merged["id"] == item["id"]
    assert merged["count"] == 10
    assert merged["title"] == "王十二、郑十一、吴十、周九、孙八等 10 人赞了你的文章"  # the 5 newest, newest first
    assert [a["id"] for a in merged["actors"]] == ["u9", "u8", "u7", "u6", "u5"]
    assert merged["actor"] == {"id": "u9", "name": "王十二"}  # the newest event's data, actor, body
    assert merged["body"] == "最新：王十二"
    assert merged["read"] is False
    assert (await counts(h))["total"] == 1


async def test_each_notification_keeps_its_in_app_line(liked: Harness) -> None:
    """The item belongs to the newest notification; each earlier one shows it was delivered, then merged."""
    h = liked
    ids = [await send(h, like("p1", n)) for n in range(3)]
    await send(h, like("p1", 3, to="bob"))
    [item] = await inbox(h)

    async def inapp(notification_id: str) -> list[dict[str, Any]]:
        r = await h.client.get(f"/v1/notifications/{notification_id}", headers=h.reader())
        assert r.status_code == 200, r.text
        assert r.json()["delivery_counts"] == {"delivered": 1}
        return [d for d in r.json()["deliveries"] if d["channel"] == "inapp"]

    [newest] = await inapp(ids[2])
    assert (newest["id"], newest["status"], newest["reason"]) == (item["id"], "delivered", None)
    for earlier, count in ((ids[0], 2), (ids[1], 3)):
        [line] = await inapp(earlier)
        assert (line["user_id"], line["status"], line["reason"]) == ("alice", "delivered", "merged")
        assert item["id"] in line["reason_detail"] and f"now stands for {count} events" in line["reason_detail"]


async def test_the_same_actor_counts_each_event_but_is_listed_once(liked: Harness) -> None:
    h = liked
    for n in (0, 1, 0, 0):
        await send(h, like("p1", n))
    [item] = await inbox(h)
    assert item["count"] == 4
    assert item["actors"] == [{"id": "u0", "name": "张三"}, {"id": "u1", "name": "李四"}]
    assert item["title"] == "张三、李四等 4 人赞了你的文章"


async def test_an_event_without_an_actor_counts_and_keeps_the_actors(liked: Harness) -> None:
    h = liked
    await send(h, like("p1", 1))
    anonymous = like("p1", 0)
    del anonymous["actor"]
    anonymous["data"]["post"]["title"] = "新标题"
    r = await h.trigger({**anonymous, "type": LIKED})
    assert r.status_code == 422  # the body template reads actors[0].name: the trigger says so
    await h.put_type(LIKED, ["inapp"], {}, merge={"key": "${post.id}", "window_seconds": 3600})
    await h.client.put(
        f"/v1/notification-types/{LIKED}/templates/inapp?locale=zh-CN",
        json={**ZH, "body": "${post.title}"},
        headers=h.admin(),
    )
    await send(h, anonymous)
    [item] = await inbox(h)
    assert (item["count"], item["actor"], item["summary"]) == (2, None, "《新标题》")
    assert item["actors"] == [{"id": "u1", "name": "李四"}]


async def test_english_locale_joins_with_commas(liked: Harness) -> None:
    h = liked
    r = await h.client.put("/v1/users/bob", json={"locale": "en"}, headers=h.admin())
    assert r.status_code in (200, 201), r.text
    for n in range(3):
        await send(h, like("p1", n, to="bob"))
    [item] = await inbox(h, "bob")
    assert item["title"] == "王五, 李四, 张三 and others (3) liked your post"


async def test_a_merged_item_moves_to_the_top_and_is_unseen_again(liked: Harness) -> None:
    h = liked
    await h.put_type("order.paid", ["inapp"], {"inapp": {"title": "订单 ${order}"}})
    await send(h, like("p1", 0))
    await send(h, {"type": "order.paid", "to": ["alice"], "data": {"order": "o-1"}})
    assert [i["type"] for i in await inbox(h)] == ["order.paid", LIKED]
    r = await h.client.post("/v1/me/inbox/seen", headers=h.user("alice"))
    assert r.status_code == 200
    assert (await counts(h))["unseen"] == 0
    await send(h, like("p1", 1))
    items = await inbox(h)
    assert [i["type"] for i in items] == [LIKED, "order.paid"]
    assert items[0]["seen_at"] is None and items[1]["seen_at"] is not None
    assert items[0]["created_at"] > items[1]["created_at"]
    assert await counts(h) == {
        "total": 2,
        "by_category": {"reminder": 2, "announcement": 0, "direct": 0},
        "unseen": 1,
    }


@pytest.mark.parametrize("mark", ["read", "archive", "delete"])
async def test_after_the_item_is_read_archived_or_deleted_a_new_item_starts(liked: Harness, mark: str) -> None:
    h = liked
    await send(h, like("p1", 0))
    await send(h, like("p1", 1))
    [item] = await inbox(h)
    if mark == "delete":
        r = await h.client.delete(f"/v1/me/inbox/{item['id']}", headers=h.user("alice"))
    else:
        r = await h.client.post(f"/v1/me/inbox/{item['id']}/{mark}", headers=h.user("alice"))
    assert r.status_code in (200, 204), r.text
    if mark == "read":  # marking it unread again does not make it a merge target again
        r = await h.client.post(f"/v1/me/inbox/{item['id']}/unread", headers=h.user("alice"))
        assert r.status_code == 200
    await send(h, like("p1", 2))
    await send(h, like("p1", 3))
    everything = await inbox(h) + await inbox(h, query="?archived=true")
    fresh = [i for i in everything if i["id"] != item["id"]]
    assert len(fresh) == 1
    assert (fresh[0]["count"], [a["id"] for a in fresh[0]["actors"]]) == (2, ["u3", "u2"])
    old = [i for i in everything if i["id"] == item["id"]]
    assert [i["count"] for i in old] == ([] if mark == "delete" else [2])


async def test_read_all_ends_merging_too(liked: Harness) -> None:
    h = liked
    await send(h, like("p1", 0))
    r = await h.client.post("/v1/me/inbox/read-all", headers=h.user("alice"))
    assert r.json() == {"updated": 1}
    await send(h, like("p1", 1))
    assert [(i["count"], i["read"]) for i in await inbox(h)] == [(1, False), (1, True)]


async def test_after_the_window_a_new_item_starts(liked: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = liked
    start = utcnow()
    await send(h, like("p1", 0))
    monkeypatch.setattr(trigger_engine, "utcnow", lambda: start + timedelta(seconds=3599))
    await send(h, like("p1", 1))  # within the window of the first event
    monkeypatch.setattr(trigger_engine, "utcnow", lambda: start + timedelta(seconds=3601))
    await send(h, like("p1", 2))  # the window (from the item's first event) has passed
    await send(h, like("p1", 3))  # ... and a new one began with the new item
    monkeypatch.undo()
    assert [(i["count"], [a["id"] for a in i["actors"]]) for i in await inbox(h)] == [
        (2, ["u3", "u2"]),
        (2, ["u1", "u0"]),
    ]


async def test_an_expired_item_is_not_merged_into(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    await put_liked(h, ttl_seconds=60)
    start = utcnow()
    await send(h, like("p1", 0))
    monkeypatch.setattr(trigger_engine, "utcnow", lambda: start + timedelta(seconds=120))
    await send(h, like("p1", 1))
    monkeypatch.undo()
    # read now, before either expired: two items of one event each
    assert [(i["count"], [a["id"] for a in i["actors"]]) for i in await inbox(h)] == [(1, ["u1"]), (1, ["u0"])]


async def test_different_keys_types_and_users_do_not_merge(liked: Harness) -> None:
    h = liked
    await h.put_type(
        "post.commented",
        ["inapp"],
        {"inapp": {"title": "${count} 条评论"}},
        merge={"key": "${post.id}", "window_seconds": 60},
    )
    await send(h, like("p1", 0))
    await send(h, like("p2", 1))
    await send(h, {**like("p1", 2), "type": "post.commented"})
    await send(h, like("p1", 3, to="bob"))
    await send(h, like("p1", 4))
    alice = await inbox(h)
    assert sorted((i["type"], i["summary"], i["count"]) for i in alice) == [
        ("post.commented", None, 1),
        (LIKED, "《文章 p1》", 2),
        (LIKED, "《文章 p2》", 1),
    ]
    [bobs] = await inbox(h, "bob")
    assert (bobs["count"], bobs["actors"]) == (1, [{"id": "u3", "name": "赵六"}])
    # and neither user can reach the other's item
    for item in alice:
        r = await h.client.get(f"/v1/me/inbox/{item['id']}", headers=h.user("bob"))
        assert r.status_code == 404
        r = await h.client.post(f"/v1/me/inbox/{item['id']}/read", headers=h.user("bob"))
        assert r.status_code == 404
    assert all(not i["read"] for i in await inbox(h))


async def test_twenty_parallel_triggers_make_one_item_of_twenty(liked: Harness) -> None:
    h = liked
    results = await asyncio.gather(*(h.trigger(like("p1", n)) for n in range(20)))
    assert [r.status_code for r in results] == [202] * 20
    [item] = await inbox(h)
    assert item["count"] == 20
    assert len(item["actors"]) == 5 and len({a["id"] for a in item["actors"]}) == 5
    assert item["title"].endswith("等 20 人赞了你的文章")
    assert (await counts(h))["total"] == 1


async def test_parallel_triggers_to_many_users_merge_per_user(liked: Harness) -> None:
    h = liked
    users = ["alice", "bob", "carol"]
    results = await asyncio.gather(
        *(h.trigger({**like("p1", n), "to": users if n % 2 else list(reversed(users))}) for n in range(10))
    )
    assert [r.status_code for r in results] == [202] * 10
    for user in users:
        assert [i["count"] for i in await inbox(h, user)] == [10]


async def test_a_batch_merges_its_own_entries(liked: Harness) -> None:
    h = liked
    body = {"notifications": [like("p1", n) for n in range(3)] + [like("p2", 3)]}
    r = await h.client.post("/v1/notifications/batch", json=body, headers=h.sender())
    assert r.status_code == 200, r.text
    assert sorted((i["summary"], i["count"]) for i in await inbox(h)) == [("《文章 p1》", 3), ("《文章 p2》", 1)]


async def test_fan_out_chunks_merge_into_inline_items_and_each_other(liked: Harness) -> None:
    h = liked
    h.herald.settings.inline_fanout_limit = 5
    h.herald.settings.fanout_chunk_size = 10  # three chunks per job (below the setting's minimum)
    users = [f"user-{i:02d}" for i in range(25)]
    await send(h, like("p1", 0, to=users[0]))
    jobs = await asyncio.gather(*(h.trigger({**like("p1", n), "to": users}) for n in (1, 2)))
    assert [r.status_code for r in jobs] == [202, 202]
    assert [i["count"] for i in await inbox(h, users[0])] == [1]  # the jobs hold the work
    await h.drain()
    assert [i["count"] for i in await inbox(h, users[0])] == [3]
    for user in users[1:]:
        [item] = await inbox(h, user)
        assert item["count"] == 2 and {a["id"] for a in item["actors"]} == {"u1", "u2"}
        assert item["title"] in ("王五、李四等 2 人赞了你的文章", "李四、王五等 2 人赞了你的文章")


async def test_per_recipient_templates_merge(harness: Harness) -> None:
    h = harness
    await h.put_type(
        LIKED,
        ["inapp"],
        {"inapp": {"title": "${recipient.name}，${actors}等 ${count} 人赞了你"}},
        merge={"key": "${post.id}", "window_seconds": 60},
    )
    await h.client.put("/v1/users/alice", json={"name": "爱丽丝", "locale": "zh-CN"}, headers=h.admin())
    for n in range(2):
        await send(h, like("p1", n))
    assert [i["title"] for i in await inbox(h)] == ["爱丽丝，李四、张三等 2 人赞了你"]


async def test_the_hot_path_and_the_route_show_count_and_actors(liked: Harness) -> None:
    h = liked
    for n in range(3):
        await send(h, like("p1", n))
    hot = (await h.client.get("/v1/me/inbox", headers=h.user("alice"))).json()["items"]
    [item] = hot
    one = (await h.client.get(f"/v1/me/inbox/{item['id']}", headers=h.user("alice"))).json()
    assert one == item
    assert (one["count"], [a["id"] for a in one["actors"]]) == (3, ["u2", "u1", "u0"])


async def test_a_type_that_does_not_merge_shows_count_one_and_its_actor(harness: Harness) -> None:
    h = harness
    await h.put_type("order.paid", ["inapp"], {"inapp": {"title": "订单 ${order}"}})
    for _ in range(2):
        await send(h, {"type": "order.paid", "to": ["alice"], "data": {"order": "o"}, "actor": {"id": "shop"}})
    await send(h, {"type": "order.paid", "to": ["alice"], "data": {"order": "o"}})
    assert [(i["count"], i["actors"]) for i in await inbox(h)] == [
        (1, []),
        (1, [{"id": "shop"}]),
        (1, [{"id": "shop"}]),
    ]


async def test_count_and_actors_are_variables_only_of_merging_types(harness: Harness) -> None:
    h = harness
    await h.put_type("order.paid", ["inapp"], {"inapp": {"title": "${count} 件"}})
    r = await h.trigger({"type": "order.paid", "to": ["alice"], "data": {}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "data.count"
    await send(h, {"type": "order.paid", "to": ["alice"], "data": {"count": 7}})
    assert [i["title"] for i in await inbox(h)] == ["7 件"]


async def test_a_merging_types_other_channels_render_with_count_one(harness: Harness) -> None:
    h = harness
    await h.client.put(
        "/v1/channel-accounts/hook",
        json={"channel": "webhook", "config": {"url": "http://127.0.0.1:9/h", "secret": "x"}, "default": True},
        headers=h.admin(),
    )
    await h.put_type(
        LIKED,
        ["inapp", "webhook"],
        {"inapp": {"title": "${actors} ${count}"}, "webhook": {"title": "${actors} ${count}"}},
        merge={"key": "${post.id}", "window_seconds": 60},
    )
    await send(h, like("p1", 0))
    await send(h, like("p1", 1))
    assert [i["title"] for i in await inbox(h)] == ["李四、张三 2"]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("${post.id", "syntax"),
        ("${recipient.id}", "recipient"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}", "limit"),
    ],
)
async def test_a_bad_merge_key_is_refused_naming_it(harness: Harness, key: str, why: str) -> None:
    r = await harness.client.put(
        f"/v1/notification-types/{LIKED}",
        json={"channels": ["inapp"], "merge": {"key": key, "window_seconds": 60}},
        headers=harness.admin(),
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["merge.key"]
    assert why in r.json()["errors"][0]["message"] or why == "syntax"


async def test_a_trigger_without_the_keys_variables_is_refused(liked: Harness) -> None:
    h = liked
    r = await h.trigger({"type": LIKED, "to": ["alice"], "data": {"post": {"title": "t"}}, "actor": {"id": "u1"}})
    assert r.status_code == 422, r.text
    # named as a template's missing attribute is named (the attribute)
    assert [(e["field"], "merge key" in e["message"]) for e in r.json()["errors"]] == [("data.id", True)]
    r = await h.trigger({"type": LIKED, "to": ["alice"], "data": {}, "actor": {"id": "u1"}})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["data.post"]
    assert await inbox(h) == []


@pytest.mark.parametrize("odd", ["x" * 60_000, "", "文章 ✓ 😀 \\ud800 '\"", 10**30, None, [1, {"a": 2}]])
async def test_any_key_value_merges(liked: Harness, odd: Any) -> None:
    """(A NUL or a lone surrogate in data is refused before anything renders, as everywhere.)"""
    h = liked
    for n in range(2):
        body = like("p1", n)
        body["data"]["post"]["id"] = odd
        await send(h, body)
    other = like("p1", 2)
    other["data"]["post"]["id"] = "something else"
    await send(h, other)
    assert sorted(i["count"] for i in await inbox(h)) == [1, 2]


async def test_a_key_over_the_render_limit_is_refused(liked: Harness) -> None:
    body = like("p1", 0)
    body["data"]["post"]["id"] = "x" * 70_000
    r = await liked.trigger(body)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "data" and "merge key" in error["message"] and "65536" in error["message"]


async def test_a_merge_reaches_open_streams_as_an_update(realtime_harness: Harness) -> None:
    h = realtime_harness
    await put_liked(h)
    stream = h.herald.realtime.hub.open("alice")
    await send(h, like("p1", 0))
    got = await collect(stream, has(INBOX_NEW, "counts"))
    [new] = named(got, INBOX_NEW)
    await send(h, like("p1", 1))
    got = await collect(stream, has(INBOX_UPDATED, "counts"))
    [updated] = named(got, INBOX_UPDATED)
    assert updated["id"] == new["id"]
    assert (updated["count"], updated["title"]) == (2, "李四、张三等 2 人赞了你的文章")
    assert named(got, "counts")[-1]["total"] == 1
    assert [updated] == await inbox(h)


async def test_a_template_that_fails_for_a_merge_keeps_the_newest_rendering(harness: Harness) -> None:
    h = harness
    title = "{% if count > 1 %}${actors[0].name} 与 ${actors[1].name}{% else %}${actors} 一人{% endif %}"
    await h.put_type(LIKED, ["inapp"], {"inapp": {"title": title}}, merge={"key": "${post.id}", "window_seconds": 60})
    await send(h, like("p1", 0))
    await send(h, like("p1", 0))  # the same actor: actors[1] does not exist
    [item] = await inbox(h)
    assert (item["count"], item["title"]) == (2, "张三 一人")
    await send(h, like("p1", 1))
    assert [i["title"] for i in await inbox(h)] == ["李四 与 张三"]


async def test_a_chunk_larger_than_one_statement_merges(liked: Harness) -> None:
    """A fan-out chunk of 1,600 (the default chunk takes them all): more parameters than one statement
    may carry (32,767), so several statements in the chunk's transaction."""
    h = liked
    users = [f"user-{i:04d}" for i in range(1600)]
    for n in (1, 2):
        r = await h.trigger({**like("p1", n), "to": users})
        assert r.status_code == 202, r.text
    await h.drain()
    async with h.herald.db.read() as conn:
        rows = (await conn.execute(select(inbox_items.c.user_id, inbox_items.c["count"]))).all()
    assert len(rows) == 1600 and {count for _, count in rows} == {2}
    [item] = await inbox(h, users[-1])
    assert item["title"] in ("王五、李四等 2 人赞了你的文章", "李四、王五等 2 人赞了你的文章")  # the jobs' order
