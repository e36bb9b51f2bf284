"""Announcements: one row each, validity windows, audiences, per-user marks, banners."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from herald.store.tables import announcement_marks, announcements, inbox_items
from herald.store.types import utcnow
from tests.conftest import Harness


async def publish(h: Harness, **fields: Any) -> dict[str, Any]:
    body = {"title": "系统升级通知", "summary": "今晚维护", "body": "22:00-23:00", **fields}
    r = await h.client.post("/v1/announcements", json=body, headers=h.admin())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def feed_ids(h: Harness, user: str, query: str = "") -> list[str]:
    r = await h.client.get(f"/v1/me/inbox{query}", headers=h.user(user))
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def rows(h: Harness, table: Any) -> int:
    async with h.herald.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_publishing_writes_one_row_whatever_the_audience(harness: Harness) -> None:
    for i in range(50):
        await harness.client.put(f"/v1/users/u{i}", json={}, headers=harness.admin())
    ann = await publish(harness)
    assert ann["id"].startswith("ann_") and ann["audience"] == {"all": True}
    assert await rows(harness, announcements) == 1
    assert await rows(harness, inbox_items) == 0
    assert await rows(harness, announcement_marks) == 0
    assert await feed_ids(harness, "u7") == [ann["id"]]
    assert await feed_ids(harness, "someone-never-seen") == [ann["id"]]
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("u7"))).json()
    assert counts["by_category"]["announcement"] == 1 and counts["total"] == 1


async def test_window_hides_before_start_and_after_end(harness: Harness) -> None:
    now = utcnow()
    future = await publish(harness, starts_at=(now + timedelta(hours=1)).isoformat())
    past = await publish(
        harness, starts_at=(now - timedelta(hours=2)).isoformat(), ends_at=(now - timedelta(hours=1)).isoformat()
    )
    live = await publish(harness, ends_at=(now + timedelta(hours=1)).isoformat())
    ids = await feed_ids(harness, "u1")
    assert ids == [live["id"]]
    assert future["id"] not in ids and past["id"] not in ids
    # the admin moves the window: visible at once in this process (cache invalidated)
    r = await harness.client.patch(
        f"/v1/announcements/{future['id']}",
        json={"starts_at": (now - timedelta(minutes=1)).isoformat()},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    assert set(await feed_ids(harness, "u1")) == {live["id"], future["id"]}


async def test_tag_audience(harness: Harness) -> None:
    await harness.client.put("/v1/users/vip1", json={"tags": ["vip"]}, headers=harness.admin())
    await harness.client.put("/v1/users/plain", json={"tags": ["free"]}, headers=harness.admin())
    ann = await publish(harness, audience={"tags": ["vip", "svip"]})
    assert await feed_ids(harness, "vip1") == [ann["id"]]
    assert await feed_ids(harness, "plain") == []
    r = await harness.client.post(f"/v1/me/inbox/{ann['id']}/read", headers=harness.user("plain"))
    assert r.status_code == 404


async def test_marks_are_per_user(harness: Harness) -> None:
    ann = await publish(harness)
    r = await harness.client.post(f"/v1/me/inbox/{ann['id']}/read", headers=harness.user("a"))
    assert r.status_code == 200 and r.json()["read"] is True
    assert await rows(harness, announcement_marks) == 1
    assert await feed_ids(harness, "a", "?status=unread") == []
    assert await feed_ids(harness, "b", "?status=unread") == [ann["id"]]
    await harness.client.post(f"/v1/me/inbox/{ann['id']}/archive", headers=harness.user("a"))
    assert await feed_ids(harness, "a") == []
    assert await feed_ids(harness, "a", "?archived=true") == [ann["id"]]
    r = await harness.client.delete(f"/v1/me/inbox/{ann['id']}", headers=harness.user("b"))
    assert r.status_code == 204
    assert await feed_ids(harness, "b") == []
    assert (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("b"))).json()["total"] == 0


async def test_banners_and_kinds(harness: Harness) -> None:
    banner = await publish(harness, kind="banner", content_type="image", media_url="https://cdn.example.com/b.png")
    await publish(harness, kind="activity")
    r = await harness.client.get("/v1/me/banners", headers=harness.user("u1"))
    assert [b["id"] for b in r.json()["items"]] == [banner["id"]]
    assert r.json()["items"][0]["media_url"] == "https://cdn.example.com/b.png"


async def test_admin_list_patch_delete(harness: Harness) -> None:
    created = [await publish(harness, title=f"n{i}") for i in range(3)]
    r = await harness.client.get("/v1/announcements?limit=2", headers=harness.reader())
    page = r.json()
    assert [a["id"] for a in page["items"]] == [created[2]["id"], created[1]["id"]]
    r = await harness.client.get(f"/v1/announcements?limit=2&cursor={page['next_cursor']}", headers=harness.reader())
    assert [a["id"] for a in r.json()["items"]] == [created[0]["id"]] and r.json()["next_cursor"] is None
    r = await harness.client.delete(f"/v1/announcements/{created[0]['id']}", headers=harness.admin())
    assert r.status_code == 204
    assert created[0]["id"] not in await feed_ids(harness, "u1")
    r = await harness.client.delete(f"/v1/announcements/{created[0]['id']}", headers=harness.admin())
    assert r.status_code == 404
