"""The inbox feed: newest first, filters, stable cursor pagination, read-all, counts."""

from __future__ import annotations

from tests.conftest import Harness


async def fill(h: Harness, type_key: str, user: str, n: int) -> None:
    for i in range(n):
        r = await h.trigger({"type": type_key, "to": [user], "data": {"amount": str(i)}})
        assert r.status_code == 202


async def all_pages(h: Harness, user: str, query: str = "", limit: int = 3) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        url = f"/v1/me/inbox?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        page = (await h.client.get(url, headers=h.user(user))).json()
        ids += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_pages_are_newest_first_and_stable_while_new_items_arrive(harness: Harness, inbox_type: str) -> None:
    await fill(harness, inbox_type, "alice", 7)
    first = (await harness.client.get("/v1/me/inbox?limit=3", headers=harness.user("alice"))).json()
    summaries = [i["summary"] for i in first["items"]]
    assert summaries == ["充值 6 元", "充值 5 元", "充值 4 元"]
    await fill(harness, inbox_type, "alice", 2)  # new items arrive between pages
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor:
        page = (await harness.client.get(f"/v1/me/inbox?limit=3&cursor={cursor}", headers=harness.user("alice"))).json()
        rest += [i["summary"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert rest == ["充值 3 元", "充值 2 元", "充值 1 元", "充值 0 元"]
    ids = await all_pages(harness, "alice")
    assert len(ids) == len(set(ids)) == 9


async def test_status_and_archived_filters(harness: Harness, inbox_type: str) -> None:
    await fill(harness, inbox_type, "alice", 4)
    ids = await all_pages(harness, "alice")
    await harness.client.post(f"/v1/me/inbox/{ids[0]}/read", headers=harness.user("alice"))
    await harness.client.post(f"/v1/me/inbox/{ids[1]}/archive", headers=harness.user("alice"))
    assert await all_pages(harness, "alice", "&status=read") == [ids[0]]
    assert await all_pages(harness, "alice", "&status=unread") == [ids[2], ids[3]]
    assert await all_pages(harness, "alice", "&archived=true") == [ids[1]]
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts["total"] == 2  # archived and read items are not unread
    await harness.client.post(f"/v1/me/inbox/{ids[1]}/unarchive", headers=harness.user("alice"))
    await harness.client.post(f"/v1/me/inbox/{ids[0]}/unread", headers=harness.user("alice"))
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts["total"] == 4
    r = await harness.client.delete(f"/v1/me/inbox/{ids[3]}", headers=harness.user("alice"))
    assert r.status_code == 204
    assert ids[3] not in await all_pages(harness, "alice")


async def test_read_all_by_category(harness: Harness, inbox_type: str) -> None:
    await harness.put_type("chat.message", ["inapp"], {"inapp": {"title": "私信"}}, category="direct")
    await fill(harness, inbox_type, "alice", 3)
    await harness.trigger({"type": "chat.message", "to": ["alice"], "data": {}})
    r = await harness.client.post("/v1/me/inbox/read-all", json={"category": "reminder"}, headers=harness.user("alice"))
    assert r.json() == {"updated": 3}
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts == {"total": 1, "by_category": {"reminder": 0, "announcement": 0, "direct": 1}, "unseen": 1}
    assert len(await all_pages(harness, "alice", "&category=direct")) == 1
    r = await harness.client.post("/v1/me/inbox/read-all", headers=harness.user("alice"))
    assert r.json() == {"updated": 1}


async def test_announcements_and_private_items_share_one_feed(harness: Harness, inbox_type: str) -> None:
    await fill(harness, inbox_type, "alice", 2)
    r = await harness.client.post("/v1/announcements", json={"title": "公告"}, headers=harness.admin())
    ann_id = r.json()["id"]
    await fill(harness, inbox_type, "alice", 1)
    feed = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert [i["category"] for i in feed] == ["reminder", "announcement", "reminder", "reminder"]
    assert feed[1]["id"] == ann_id
    assert await all_pages(harness, "alice", limit=1) == [i["id"] for i in feed]


async def test_user_erase_removes_everything(harness: Harness, inbox_type: str) -> None:
    await fill(harness, inbox_type, "alice", 2)
    r = await harness.client.delete("/v1/users/alice", headers=harness.admin())
    assert r.status_code == 204
    assert await all_pages(harness, "alice") == []
    assert (await harness.client.get("/v1/users/alice", headers=harness.reader())).status_code == 404


async def test_action_url_actions_actor_and_target_reach_the_item(harness: Harness) -> None:
    await harness.put_type(
        "comment.new",
        ["inapp"],
        {
            "inapp": {
                "title": "${who} 评论了你",
                "action_url": "https://app.example.com/posts/${post}",
                "actions": [{"label": "回复", "url": "https://app.example.com/posts/${post}#reply"}],
            }
        },
    )
    r = await harness.trigger(
        {
            "type": "comment.new",
            "to": ["alice"],
            "data": {"who": "Bob", "post": "p-1"},
            "actor": {"id": "bob", "name": "Bob"},
            "target": {"type": "post", "id": "p-1"},
        }
    )
    assert r.status_code == 202, r.text
    (item,) = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert item["title"] == "Bob 评论了你"
    assert item["action_url"] == "https://app.example.com/posts/p-1"
    assert item["actions"] == [{"label": "回复", "url": "https://app.example.com/posts/p-1#reply"}]
    assert item["actor"] == {"id": "bob", "name": "Bob"} and item["target"] == {"type": "post", "id": "p-1"}
    assert item["data"] == {"who": "Bob", "post": "p-1"}


async def test_counts_follow_every_mark_on_items_and_announcements(harness: Harness, inbox_type: str) -> None:
    """Unread and unseen, private items and announcements, through seen, read, archive and delete."""
    h, alice = harness, harness.user("alice")

    async def counts() -> tuple[int, int, int]:
        c = (await h.client.get("/v1/me/inbox/counts", headers=alice)).json()
        return c["by_category"]["reminder"], c["by_category"]["announcement"], c["unseen"]

    await fill(h, inbox_type, "alice", 2)
    anns = []
    for title in ("a1", "a2", "a3"):
        r = await h.client.post("/v1/announcements", json={"title": title}, headers=h.admin())
        assert r.status_code == 201
        anns.append(r.json()["id"])
    assert await counts() == (2, 3, 5)
    assert (await h.client.post("/v1/me/inbox/seen", headers=alice)).json() == {"updated": 5}
    assert await counts() == (2, 3, 0)  # seen, still unread
    await fill(h, inbox_type, "alice", 1)
    r = await h.client.post("/v1/announcements", json={"title": "a4"}, headers=h.admin())
    anns.append(r.json()["id"])
    assert await counts() == (3, 4, 2)  # the new ones are unseen
    await h.client.post(f"/v1/me/inbox/{anns[3]}/read", headers=alice)  # read implies seen
    assert await counts() == (3, 3, 1)
    await h.client.post(f"/v1/me/inbox/{anns[0]}/archive", headers=alice)
    await h.client.delete(f"/v1/me/inbox/{anns[1]}", headers=alice)
    assert await counts() == (3, 1, 1)
    await h.client.post(f"/v1/me/inbox/{anns[3]}/unread", headers=alice)  # unread again, seen stays
    assert await counts() == (3, 2, 1)
    bob = (await h.client.get("/v1/me/inbox/counts", headers=h.user("bob"))).json()
    assert (bob["by_category"]["announcement"], bob["unseen"]) == (4, 4)  # alice's marks are hers alone


async def test_announcement_marks_show_in_the_feed(harness: Harness, inbox_type: str) -> None:
    """Seen is not read; read, archived and deleted each show (or hide) as the user set them."""
    h, alice = harness, harness.user("alice")
    await fill(h, inbox_type, "alice", 1)
    ids = []
    for title in ("seen-only", "read", "archived", "deleted"):
        r = await h.client.post("/v1/announcements", json={"title": title}, headers=h.admin())
        ids.append(r.json()["id"])
    await h.client.post("/v1/me/inbox/seen", headers=alice)
    await h.client.post(f"/v1/me/inbox/{ids[1]}/read", headers=alice)
    await h.client.post(f"/v1/me/inbox/{ids[2]}/archive", headers=alice)
    await h.client.delete(f"/v1/me/inbox/{ids[3]}", headers=alice)

    async def feed(query: str = "") -> dict[str, dict[str, object]]:
        items = (await h.client.get(f"/v1/me/inbox?limit=50{query}", headers=alice)).json()["items"]
        return {i["title"]: i for i in items if i["type"] == "announcement"}

    shown = await feed()
    assert sorted(shown) == ["read", "seen-only"]
    assert (shown["seen-only"]["read"], shown["seen-only"]["read_at"]) == (False, None)
    assert shown["seen-only"]["seen_at"] is not None
    assert shown["read"]["read"] is True and shown["read"]["read_at"] is not None
    assert sorted(await feed("&status=unread")) == ["seen-only"]
    assert sorted(await feed("&status=read")) == ["read"]
    assert sorted(await feed("&archived=true")) == ["archived"]
    bob = (await h.client.get("/v1/me/inbox?limit=50", headers=h.user("bob"))).json()["items"]
    assert sorted(i["title"] for i in bob) == ["archived", "deleted", "read", "seen-only"]
    assert all(i["seen_at"] is None and not i["read"] for i in bob)
