"""A user token never reaches another user's data: every /v1/me path with someone else's id is 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Harness

PROBLEM = "application/problem+json"
ACTIONS = ["read", "unread", "archive", "unarchive"]


async def send(harness: Harness, inbox_type: str, user: str, amount: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": [user], "data": {"amount": amount}})
    assert r.status_code == 202, r.text


async def inbox(harness: Harness, user: str, **params: Any) -> list[dict[str, Any]]:
    r = await harness.client.get("/v1/me/inbox", params=params, headers=harness.user(user))
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def counts(harness: Harness, user: str) -> dict[str, Any]:
    r = await harness.client.get("/v1/me/inbox/counts", headers=harness.user(user))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def item(harness: Harness, user: str, item_id: str) -> httpx.Response:
    return await harness.client.get(f"/v1/me/inbox/{item_id}", headers=harness.user(user))


def assert_404(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 404
    # a 404 says nothing about the item it refused
    assert "title" in body and "items" not in body and "summary" not in body and "body" not in body


async def attempts_on(harness: Harness, user: str, item_id: str) -> list[httpx.Response]:
    """Every /v1/me call that takes an item id, made by ``user``."""
    headers = harness.user(user)
    out = [await harness.client.get(f"/v1/me/inbox/{item_id}", headers=headers)]
    for action in ACTIONS:
        out.append(await harness.client.post(f"/v1/me/inbox/{item_id}/{action}", headers=headers))
    out.append(await harness.client.delete(f"/v1/me/inbox/{item_id}", headers=headers))
    return out


@pytest.fixture
async def two_users(harness: Harness, inbox_type: str) -> dict[str, str]:
    """alice and bob each with two private items; returns each user's newest item id."""
    await harness.client.put("/v1/users/bob", json={"locale": "en"}, headers=harness.admin())
    for n in ("1", "2"):
        await send(harness, inbox_type, "alice", f"a{n}")
        await send(harness, inbox_type, "bob", f"b{n}")
    alice = await inbox(harness, "alice")
    bob = await inbox(harness, "bob")
    assert len(alice) == 2 and len(bob) == 2
    return {"alice": alice[0]["id"], "bob": bob[0]["id"]}


async def test_inbox_lists_only_the_callers_items(harness: Harness, two_users: dict[str, str]) -> None:
    alice = await inbox(harness, "alice", status="all")
    bob = await inbox(harness, "bob", status="all")
    assert sorted(i["summary"] for i in alice) == ["充值 a1 元", "充值 a2 元"]
    assert sorted(i["summary"] for i in bob) == ["Topped up b1", "Topped up b2"]
    assert not {i["id"] for i in alice} & {i["id"] for i in bob}
    for params in ({"status": "unread"}, {"category": "reminder"}, {"archived": "true"}, {"status": "read"}):
        assert all("b" not in i["summary"] for i in await inbox(harness, "alice", **params))
    # a similar-looking user id is another user
    for other in ("Alice", "alice ", "alic", "alice%", "alice_"):
        r = await harness.client.get("/v1/me/inbox", headers=harness.user(other))
        assert r.status_code == 200 and r.json()["items"] == [], other
    # a NUL in the subject is no user at all (and PostgreSQL could not even look it up)
    r = await harness.client.get("/v1/me/inbox", headers=harness.user("alice\u0000"))
    assert r.status_code == 401, r.text
    assert (await counts(harness, "alice"))["total"] == 2
    assert (await counts(harness, "carol"))["total"] == 0


async def test_a_cursor_from_someone_else_pages_only_your_own_feed(harness: Harness, two_users: dict[str, str]) -> None:
    r = await harness.client.get("/v1/me/inbox", params={"limit": 1}, headers=harness.user("alice"))
    cursor = r.json()["next_cursor"]
    assert cursor
    r = await harness.client.get("/v1/me/inbox", params={"cursor": cursor, "limit": 100}, headers=harness.user("bob"))
    assert r.status_code == 200
    assert all(i["summary"].startswith("Topped up b") for i in r.json()["items"])


async def test_fresh_item_cannot_be_touched_by_another_user(harness: Harness, two_users: dict[str, str]) -> None:
    target = two_users["alice"]
    before = (await item(harness, "alice", target)).json()
    for r in await attempts_on(harness, "bob", target):
        assert_404(r)
    after = await item(harness, "alice", target)
    assert after.status_code == 200
    assert after.json() == before
    assert after.json()["read"] is False and after.json()["archived"] is False
    assert (await counts(harness, "alice"))["total"] == 2
    assert len(await inbox(harness, "alice")) == 2


async def test_read_and_archived_item_cannot_be_reset_by_another_user(
    harness: Harness, two_users: dict[str, str]
) -> None:
    target = two_users["alice"]
    for action in ("read", "archive"):
        r = await harness.client.post(f"/v1/me/inbox/{target}/{action}", headers=harness.user("alice"))
        assert r.status_code == 200, r.text
    before = (await item(harness, "alice", target)).json()
    assert before["read"] is True and before["archived"] is True
    for r in await attempts_on(harness, "bob", target):
        assert_404(r)
    after = await item(harness, "alice", target)
    assert after.status_code == 200 and after.json() == before


async def test_bob_can_still_act_on_his_own_items(harness: Harness, two_users: dict[str, str]) -> None:
    """The 404s above come from ownership, not from the endpoints being broken."""
    own = two_users["bob"]
    responses = await attempts_on(harness, "bob", own)
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 204]
    assert_404(await item(harness, "bob", own))


async def test_unknown_item_ids_are_404(harness: Harness, two_users: dict[str, str]) -> None:
    for bogus in ("itm_doesnotexist", "ann_doesnotexist", "x", "ntf_" + two_users["alice"][4:]):
        for r in await attempts_on(harness, "bob", bogus):
            assert_404(r)


async def test_read_all_touches_only_the_callers_items(harness: Harness, two_users: dict[str, str]) -> None:
    r = await harness.client.post("/v1/me/inbox/read-all", headers=harness.user("bob"))
    assert r.status_code == 200 and r.json()["updated"] == 2
    assert (await counts(harness, "bob"))["total"] == 0
    assert (await counts(harness, "alice"))["total"] == 2
    assert all(i["read"] is False for i in await inbox(harness, "alice"))
    r = await harness.client.post("/v1/me/inbox/read-all", json={"category": "reminder"}, headers=harness.user("carol"))
    assert r.status_code == 200 and r.json()["updated"] == 0
    assert (await counts(harness, "alice"))["total"] == 2


# -- announcements ----------------------------------------------------------------------------


async def announce(harness: Harness, **fields: Any) -> str:
    r = await harness.client.post("/v1/announcements", json=fields, headers=harness.admin())
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


@pytest.fixture
async def vip_announcements(harness: Harness) -> dict[str, str]:
    r = await harness.client.put("/v1/users/alice", json={"tags": ["vip"]}, headers=harness.admin())
    assert r.status_code == 200
    r = await harness.client.put("/v1/users/bob", json={"tags": ["basic"]}, headers=harness.admin())
    assert r.status_code == 200
    return {
        "notice": await announce(harness, title="VIP notice", audience={"tags": ["vip"]}),
        "banner": await announce(harness, title="VIP banner", kind="banner", audience={"tags": ["vip"]}),
    }


async def test_announcements_outside_your_audience_are_invisible(
    harness: Harness, vip_announcements: dict[str, str]
) -> None:
    ids = set(vip_announcements.values())
    alice = await inbox(harness, "alice")
    assert {i["id"] for i in alice} == ids
    assert (await counts(harness, "alice"))["by_category"]["announcement"] == 2
    r = await harness.client.get("/v1/me/banners", headers=harness.user("alice"))
    assert [b["id"] for b in r.json()["items"]] == [vip_announcements["banner"]]

    for params in ({}, {"status": "unread"}, {"category": "announcement"}, {"status": "all"}):
        assert not ids & {i["id"] for i in await inbox(harness, "bob", **params)}
    assert (await counts(harness, "bob"))["by_category"]["announcement"] == 0
    assert (await counts(harness, "bob"))["total"] == 0
    r = await harness.client.get("/v1/me/banners", headers=harness.user("bob"))
    assert r.status_code == 200 and r.json()["items"] == []
    # a user Herald has never heard of has no tags either
    assert (await counts(harness, "stranger"))["total"] == 0


@pytest.mark.parametrize("kind", ["notice", "banner"])
async def test_announcements_outside_your_audience_cannot_be_read_or_marked(
    harness: Harness, vip_announcements: dict[str, str], kind: str
) -> None:
    target = vip_announcements[kind]
    before = (await item(harness, "alice", target)).json()
    assert before["read"] is False
    for who in ("bob", "stranger"):
        for r in await attempts_on(harness, who, target):
            assert_404(r)
        r = await harness.client.post("/v1/me/inbox/read-all", headers=harness.user(who))
        assert r.status_code == 200 and r.json()["updated"] == 0
    after = await item(harness, "alice", target)
    assert after.status_code == 200 and after.json() == before
    assert (await counts(harness, "alice"))["total"] == 2

    # bob's refused attempts left no marks behind: once he joins the audience it is fresh for him
    r = await harness.client.put("/v1/users/bob", json={"tags": ["vip"]}, headers=harness.admin())
    assert r.status_code == 200
    mine = await item(harness, "bob", target)
    assert mine.status_code == 200
    assert mine.json()["read"] is False and mine.json()["archived"] is False


async def test_marks_on_a_shared_announcement_are_per_user(harness: Harness) -> None:
    ann = await announce(harness, title="For everyone", audience={"all": True})
    for action in ("read", "archive"):
        r = await harness.client.post(f"/v1/me/inbox/{ann}/{action}", headers=harness.user("bob"))
        assert r.status_code == 200, r.text
    r = await harness.client.delete(f"/v1/me/inbox/{ann}", headers=harness.user("bob"))
    assert r.status_code == 204
    assert_404(await item(harness, "bob", ann))

    alice = await item(harness, "alice", ann)
    assert alice.status_code == 200
    assert alice.json()["read"] is False and alice.json()["archived"] is False
    assert (await counts(harness, "alice"))["by_category"]["announcement"] == 1
    assert [i["id"] for i in await inbox(harness, "alice")] == [ann]

    r = await harness.client.post("/v1/me/inbox/read-all", headers=harness.user("carol"))
    assert r.status_code == 200 and r.json()["updated"] == 1
    assert (await counts(harness, "alice"))["by_category"]["announcement"] == 1
