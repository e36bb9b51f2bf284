"""Direct messages (个人私信) through the API, on both databases: sending, conversations and their
messages, reading, the receiver's one ``direct`` inbox item per conversation, blocks, the deployment
switch, bad input, admins' audited reads, erasure, and concurrent messages."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.store.apikeys import create_api_key
from tests.conftest import Harness, make_settings, running_harness
from tests.engine.test_streams import collect, has, named
from tests.test_cli import clean_env, herald

PROBLEM = "application/problem+json"
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LONE = "\ud800"


@pytest.fixture
async def dm(harness: Harness) -> Harness:
    """alice (named 张三), bob and carol exist."""
    for user_id, name in (("alice", "张三"), ("bob", "Bob"), ("carol", None)):
        r = await harness.client.put(f"/v1/users/{user_id}", json={"name": name}, headers=harness.admin())
        assert r.status_code == 200, r.text
    return harness


async def send(h: Harness, sender: str, to: str, body: str, **headers: str) -> httpx.Response:
    return await h.client.post("/v1/me/messages", json={"to": to, "body": body}, headers={**h.user(sender), **headers})


async def sent(h: Harness, sender: str, to: str, body: str) -> dict[str, Any]:
    r = await send(h, sender, to, body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def get(h: Harness, user: str, path: str, **params: Any) -> Any:
    r = await h.client.get(path, params=params, headers=h.user(user))
    assert r.status_code == 200, r.text
    return r.json()


async def conversations(h: Harness, user: str) -> list[dict[str, Any]]:
    return (await get(h, user, "/v1/me/conversations"))["items"]  # type: ignore[no-any-return]


async def messages(h: Harness, user: str, peer: str, **params: Any) -> dict[str, Any]:
    return await get(h, user, f"/v1/me/conversations/{peer}/messages", **params)  # type: ignore[no-any-return]


async def direct_items(h: Harness, user: str, **params: Any) -> list[dict[str, Any]]:
    items = (await get(h, user, "/v1/me/inbox", **params))["items"]
    return [i for i in items if i["category"] == "direct"]


async def read(h: Harness, user: str, peer: str) -> httpx.Response:
    return await h.client.post(f"/v1/me/conversations/{peer}/read", headers=h.user(user))


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body  # type: ignore[no-any-return]


# -- sending, listing, reading ---------------------------------------------------------------------


async def test_a_message_is_sent_listed_and_read(dm: Harness) -> None:
    message = await sent(dm, "alice", "bob", "明天 10 点开会？")
    assert message["id"].startswith("msg_")
    assert message["conversation"] == "bob" and message["from"] == "alice" and message["to"] == "bob"
    assert message["body"] == "明天 10 点开会？" and message["created_at"].endswith("+00:00")

    (bobs,) = await conversations(dm, "bob")
    assert bobs["peer"] == "alice" and bobs["peer_name"] == "张三" and bobs["unread"] == 1
    assert bobs["last_message"] == {**message, "conversation": "alice"}  # as bob sees it
    (alices,) = await conversations(dm, "alice")
    assert alices["peer"] == "bob" and alices["unread"] == 0 and alices["last_message"] == message
    assert (await messages(dm, "bob", "alice"))["items"] == [{**message, "conversation": "alice"}]

    reply = await sent(dm, "bob", "alice", "好的")
    listed = (await messages(dm, "alice", "bob"))["items"]
    assert [m["id"] for m in listed] == [reply["id"], message["id"]]  # newest first
    assert listed[0] == {**reply, "conversation": "bob"}
    assert (await conversations(dm, "bob"))[0]["unread"] == 1  # bob's own reply is not unread for him

    r = await read(dm, "bob", "alice")
    assert r.status_code == 200, r.text
    assert r.json()["unread"] == 0 and r.json()["read_at"] is not None
    assert (await conversations(dm, "bob"))[0]["unread"] == 0
    assert (await get(dm, "bob", "/v1/me/conversations/alice"))["last_message"]["id"] == reply["id"]


async def test_conversations_come_latest_first(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "1")
    await sent(dm, "carol", "bob", "2")
    assert [c["peer"] for c in await conversations(dm, "bob")] == ["carol", "alice"]
    await sent(dm, "bob", "alice", "3")  # bob writing moves his conversation up too
    assert [c["peer"] for c in await conversations(dm, "bob")] == ["alice", "carol"]
    first = await get(dm, "bob", "/v1/me/conversations", limit=1)
    assert [c["peer"] for c in first["items"]] == ["alice"] and first["next_cursor"]
    second = await get(dm, "bob", "/v1/me/conversations", limit=1, cursor=first["next_cursor"])
    assert [c["peer"] for c in second["items"]] == ["carol"] and second["next_cursor"] is None


async def test_pages_of_messages_stay_stable_while_new_messages_arrive(dm: Harness) -> None:
    old = [(await sent(dm, "alice" if n % 2 else "bob", "bob" if n % 2 else "alice", f"m{n}"))["id"] for n in range(25)]
    first = await messages(dm, "bob", "alice", limit=10)
    assert [m["id"] for m in first["items"]] == old[::-1][:10]
    for n in range(5):  # newer messages come before the cursor, never into the pages after it
        await sent(dm, "alice", "bob", f"new{n}")
    seen = [m["id"] for m in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await messages(dm, "bob", "alice", limit=10, cursor=cursor)
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
    assert seen == old[::-1]
    r = await dm.client.get(
        "/v1/me/conversations/alice/messages", params={"cursor": "not-a-cursor"}, headers=dm.user("bob")
    )
    assert_problem(r, 400, "cursor")


async def test_an_idempotency_key_sends_once(dm: Harness) -> None:
    first = await send(dm, "alice", "bob", "once", **{"Idempotency-Key": "k-1"})
    again = await send(dm, "alice", "bob", "once", **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert len((await messages(dm, "bob", "alice"))["items"]) == 1
    other = await send(dm, "alice", "bob", "another body", **{"Idempotency-Key": "k-1"})
    assert_problem(other, 409)
    # the keys are the sender's own: bob's k-1 is another request
    assert (await send(dm, "bob", "alice", "once", **{"Idempotency-Key": "k-1"})).status_code == 201


# -- the receiver's one inbox item per conversation --------------------------------------------------


async def test_the_receiver_gets_one_direct_item_per_conversation(dm: Harness) -> None:
    hot = dm.client._transport.app.state.hot_inbox  # type: ignore[attr-defined]
    served = hot["served"]
    for n in range(3):
        await sent(dm, "alice", "bob", f"第 {n} 条\n消息")
    (item,) = await direct_items(dm, "bob")
    assert hot["served"] > served  # the fast path (api/hot.py) answered, and shows the item as the route does
    assert item["type"] == "direct.message" and item["category"] == "direct"
    assert item["title"] == "张三" and item["summary"] == "第 2 条 消息" and item["body"] == "第 2 条\n消息"
    assert item["data"]["conversation"] == "alice" and item["data"]["unread"] == item["count"] == 3
    assert item["actor"] == {"id": "alice", "name": "张三"} and not item["read"]
    counts = await get(dm, "bob", "/v1/me/inbox/counts")
    assert counts["by_category"]["direct"] == 1 and counts["total"] == 1
    assert await direct_items(dm, "alice") == []  # the sender gets no item

    await sent(dm, "carol", "bob", "hi")
    await sent(dm, "alice", "bob", "again")  # alice's item moves back to the top
    first, second = await direct_items(dm, "bob")
    assert (first["id"], first["data"]["unread"], first["summary"]) == (item["id"], 4, "again")
    assert second["title"] == "carol" and second["data"] == {**second["data"], "conversation": "carol", "unread": 1}

    assert (await read(dm, "bob", "alice")).status_code == 200  # reading the conversation reads its item
    read_item = await get(dm, "bob", f"/v1/me/inbox/{item['id']}")
    assert read_item["read"] and read_item["data"]["unread"] == 0 and read_item["count"] == 4
    assert (await get(dm, "bob", "/v1/me/inbox/counts"))["by_category"]["direct"] == 1  # carol's

    r = await dm.client.post(f"/v1/me/inbox/{item['id']}/archive", headers=dm.user("bob"))
    assert r.status_code == 200
    await sent(dm, "alice", "bob", "new")  # a new message: unread again, out of the archive, on top
    top = (await direct_items(dm, "bob"))[0]
    assert (top["id"], top["read"], top["archived"], top["data"]["unread"]) == (item["id"], False, False, 1)
    assert top["count"] == 1 and top["actors"] == [{"id": "alice", "name": "张三"}]


async def test_a_deleted_direct_item_comes_back_as_a_new_one(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "1")
    (item,) = await direct_items(dm, "bob")
    assert (await dm.client.delete(f"/v1/me/inbox/{item['id']}", headers=dm.user("bob"))).status_code == 204
    await sent(dm, "alice", "bob", "2")
    (fresh,) = await direct_items(dm, "bob")
    assert fresh["id"] != item["id"] and fresh["data"]["unread"] == 2 and fresh["summary"] == "2"
    await sent(dm, "alice", "bob", "3")
    assert [i["id"] for i in await direct_items(dm, "bob")] == [fresh["id"]]


async def test_a_long_message_is_cut_in_the_summary_only(dm: Harness) -> None:
    body = "字" * 500
    await sent(dm, "alice", "bob", body)
    (item,) = await direct_items(dm, "bob")
    assert item["body"] == body and len(item["summary"]) == 140 and item["summary"].endswith("…")


@pytest.fixture
async def live_dm(realtime_harness: Harness) -> Harness:
    for user_id in ("dm-rt-alice", "dm-rt-bob"):
        r = await realtime_harness.client.put(f"/v1/users/{user_id}", json={}, headers=realtime_harness.admin())
        assert r.status_code == 200, r.text
    return realtime_harness


async def test_the_receivers_stream_hears_of_the_item_new_then_updated(live_dm: Harness) -> None:
    bob = live_dm.herald.realtime.hub.open("dm-rt-bob")
    await sent(live_dm, "dm-rt-alice", "dm-rt-bob", "one")
    got = await collect(bob, has("inbox.new", "counts"))
    (item,) = await direct_items(live_dm, "dm-rt-bob")
    assert named(got, "inbox.new") == [item]
    await sent(live_dm, "dm-rt-alice", "dm-rt-bob", "two")
    got = await collect(bob, has("inbox.updated"))
    (updated,) = named(got, "inbox.updated")
    assert updated["id"] == item["id"] and updated["data"]["unread"] == 2 and updated["summary"] == "two"
    await read(live_dm, "dm-rt-bob", "dm-rt-alice")
    got = await collect(bob, has("inbox.updated"))
    assert named(got, "inbox.updated")[-1]["read"] is True


# -- concurrency -----------------------------------------------------------------------------------


async def test_twenty_messages_at_once_make_one_item_with_twenty_unread(dm: Harness) -> None:
    results = await asyncio.gather(*(send(dm, "alice", "bob", f"m{n}") for n in range(20)))
    assert [r.status_code for r in results] == [201] * 20, [r.text for r in results if r.status_code != 201]
    (item,) = await direct_items(dm, "bob")
    assert item["data"]["unread"] == item["count"] == 20
    assert (await conversations(dm, "bob"))[0]["unread"] == 20
    assert len((await messages(dm, "bob", "alice", limit=100))["items"]) == 20


async def test_two_users_writing_to_each_other_at_once(dm: Harness) -> None:
    """Both sides lock the conversation in the same order: no deadlock, every message kept."""
    results = await asyncio.gather(
        *(send(dm, a, b, f"{a}{n}") for n in range(10) for a, b in (("alice", "bob"), ("bob", "alice")))
    )
    assert [r.status_code for r in results] == [201] * 20, [r.text for r in results if r.status_code != 201]
    assert len((await messages(dm, "alice", "bob", limit=100))["items"]) == 20
    for user, peer in (("alice", "bob"), ("bob", "alice")):
        (item,) = await direct_items(dm, user)
        assert item["data"]["unread"] == 10 and item["data"]["conversation"] == peer
        assert (await conversations(dm, user))[0]["unread"] == 10


# -- blocks ------------------------------------------------------------------------------------------


async def test_a_blocked_sender_cannot_send_and_cannot_see_the_block(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "before")
    r = await dm.client.put("/v1/me/blocks/alice", headers=dm.user("bob"))
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == "alice"
    again = await dm.client.put("/v1/me/blocks/alice", headers=dm.user("bob"))
    assert again.json() == r.json()  # blocking again changes nothing

    refused = await send(dm, "alice", "bob", "after")
    body = assert_problem(refused, 403)
    assert body["detail"] == "cannot send to this user" and "block" not in json.dumps(body)
    assert [m["body"] for m in (await messages(dm, "bob", "alice"))["items"]] == ["before"]
    assert (await direct_items(dm, "bob"))[0]["data"]["unread"] == 1

    assert (await get(dm, "bob", "/v1/me/blocks"))["items"] == [r.json()]
    for other in ("alice", "carol"):  # nobody else sees it
        assert (await get(dm, other, "/v1/me/blocks"))["items"] == []
        assert_problem(await dm.client.delete("/v1/me/blocks/alice", headers=dm.user(other)), 404)
    alices_view = (await conversations(dm, "alice"))[0]
    assert set(alices_view) == {"peer", "peer_name", "unread", "read_at", "updated_at", "last_message"}

    # bob cannot write to whom he blocked; he is told why, as it is his own block
    mine = assert_problem(await send(dm, "bob", "alice", "hm"), 403)
    assert "unblock" in mine["detail"]
    # alice blocking bob in turn learns nothing of bob's block: her answer is the one of her own block alone
    assert (await dm.client.put("/v1/me/blocks/carol", headers=dm.user("alice"))).status_code == 200
    not_blocked_by_carol = assert_problem(await send(dm, "alice", "carol", "x"), 403)
    assert (await dm.client.put("/v1/me/blocks/bob", headers=dm.user("alice"))).status_code == 200
    blocked_by_bob = assert_problem(await send(dm, "alice", "bob", "x"), 403)
    assert blocked_by_bob == not_blocked_by_carol
    assert (await dm.client.delete("/v1/me/blocks/bob", headers=dm.user("alice"))).status_code == 204

    assert (await dm.client.delete("/v1/me/blocks/alice", headers=dm.user("bob"))).status_code == 204
    assert (await get(dm, "bob", "/v1/me/blocks"))["items"] == []
    assert (await send(dm, "alice", "bob", "after")).status_code == 201
    assert_problem(await dm.client.delete("/v1/me/blocks/alice", headers=dm.user("bob")), 404)


async def test_blocking_oneself_or_nobody_is_refused(dm: Harness) -> None:
    assert_problem(await dm.client.put("/v1/me/blocks/bob", headers=dm.user("bob")), 422, "user_id")
    assert_problem(await dm.client.put("/v1/me/blocks/nobody", headers=dm.user("bob")), 404)


async def test_blocks_are_paginated(dm: Harness) -> None:
    for user_id in ("alice", "carol"):
        assert (await dm.client.put(f"/v1/me/blocks/{user_id}", headers=dm.user("bob"))).status_code == 200
    first = await get(dm, "bob", "/v1/me/blocks", limit=1)
    second = await get(dm, "bob", "/v1/me/blocks", limit=1, cursor=first["next_cursor"])
    assert {first["items"][0]["user_id"], second["items"][0]["user_id"]} == {"alice", "carol"}
    assert second["next_cursor"] is None


# -- who can read what ------------------------------------------------------------------------------


async def test_a_user_never_reaches_a_conversation_they_are_not_in(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "private")
    (item,) = await direct_items(dm, "bob")
    for path in ("/v1/me/conversations/alice", "/v1/me/conversations/alice/messages"):
        r = await dm.client.get(path, headers=dm.user("carol"))
        assert_problem(r, 404)
        assert "private" not in r.text
    assert_problem(await read(dm, "carol", "alice"), 404)
    assert_problem(await read(dm, "carol", "bob"), 404)
    assert await conversations(dm, "carol") == []
    assert_problem(await dm.client.get(f"/v1/me/inbox/{item['id']}", headers=dm.user("carol")), 404)
    # bob's unread stays his: carol's attempts changed nothing
    assert (await conversations(dm, "bob"))[0]["unread"] == 1
    # a user's own id as the peer is no conversation either
    assert_problem(await dm.client.get("/v1/me/conversations/bob/messages", headers=dm.user("bob")), 404)


# -- bad input -----------------------------------------------------------------------------------------


async def test_bad_messages_are_422_naming_the_field(dm: Harness) -> None:
    cases: list[tuple[Any, str]] = [
        ({"to": "alice", "body": "to myself"}, "to"),
        ({"to": "bob", "body": ""}, "body"),
        ({"to": "bob", "body": " \n\t "}, "body"),
        ({"to": "bob", "body": "a\x00b"}, "body"),
        ({"to": "bob", "body": 42}, "body"),
        ({"to": "bob", "body": None}, "body"),
        ({"to": "bob"}, "body"),
        ({"body": "x"}, "to"),
        ({"to": "", "body": "x"}, "to"),
        ({"to": "b" * 201, "body": "x"}, "to"),
        ({"to": ["bob"], "body": "x"}, "to"),
        ({"to": "bob", "body": "x", "extra": 1}, "extra"),
    ]
    for payload, field in cases:
        r = await dm.client.post("/v1/me/messages", json=payload, headers=dm.user("alice"))
        assert_problem(r, 422, field)
    lone = await dm.client.post(
        "/v1/me/messages",
        content=json.dumps({"to": "bob", "body": "x" + LONE}).encode(),
        headers={**dm.user("alice"), "Content-Type": "application/json"},
    )
    assert_problem(lone, 422, "body")
    assert await conversations(dm, "alice") == [] and await direct_items(dm, "bob") == []


async def test_a_message_to_nobody_is_404(dm: Harness) -> None:
    body = assert_problem(await send(dm, "alice", "nobody", "hello?"), 404)
    assert body["detail"] == "user not found"
    r = await dm.client.get("/v1/users/nobody", headers=dm.reader())
    assert r.status_code == 404  # and the user was not created by it


async def test_the_body_limit_is_a_setting_counted_in_characters(database_url: str) -> None:
    async with running_harness(make_settings(database_url, direct_message_max_chars=5)) as h:
        for user_id in ("alice", "bob"):
            await h.client.put(f"/v1/users/{user_id}", json={}, headers=h.admin())
        assert (await send(h, "alice", "bob", "五个汉字啊")).status_code == 201  # 5 characters, 15 bytes
        body = assert_problem(await send(h, "alice", "bob", "六个汉字啊啊"), 422, "body")
        assert "at most 5" in body["detail"]


async def test_the_default_limit_is_4000_characters(dm: Harness) -> None:
    assert (await send(dm, "alice", "bob", "x" * 4000)).status_code == 201
    assert_problem(await send(dm, "alice", "bob", "x" * 4001), 422, "body")


@FUZZ
@given(body=st.text(max_size=60))
async def test_any_text_is_sent_as_is_or_refused_naming_body(dm: Harness, body: str) -> None:
    r = await dm.client.post(
        "/v1/me/messages",
        content=json.dumps({"to": "bob", "body": body}).encode(),
        headers={**dm.user("alice"), "Content-Type": "application/json"},
    )
    if r.status_code == 201:
        assert r.json()["body"] == body and body.strip()
    else:
        assert_problem(r, 422, "body")


async def test_a_sender_unknown_so_far_becomes_a_user_who_can_be_answered(dm: Harness) -> None:
    await sent(dm, "dave", "bob", "new here")  # a token the business backend minted for a new user
    assert (await dm.client.get("/v1/users/dave", headers=dm.reader())).status_code == 200
    await sent(dm, "bob", "dave", "welcome")


# -- the switch --------------------------------------------------------------------------------------


@pytest.fixture
async def switched_off(database_url: str) -> AsyncIterator[Harness]:
    async with running_harness(make_settings(database_url, direct_messages=False)) as h:
        for user_id in ("alice", "bob"):
            await h.client.put(f"/v1/users/{user_id}", json={}, headers=h.admin())
        yield h


async def test_switched_off_every_user_endpoint_is_404(switched_off: Harness) -> None:
    h = switched_off
    user = h.user("alice")
    for method, path in (
        ("POST", "/v1/me/messages"),
        ("GET", "/v1/me/conversations"),
        ("GET", "/v1/me/conversations/bob"),
        ("GET", "/v1/me/conversations/bob/messages"),
        ("POST", "/v1/me/conversations/bob/read"),
        ("GET", "/v1/me/blocks"),
        ("PUT", "/v1/me/blocks/bob"),
        ("DELETE", "/v1/me/blocks/bob"),
    ):
        payload = {"json": {"to": "bob", "body": "hi"}} if method == "POST" else {}
        r = await h.client.request(method, path, headers=user, **payload)
        body = assert_problem(r, 404)
        assert "HERALD_DIRECT_MESSAGES" in body["detail"], (method, path)
    assert (await get(h, "bob", "/v1/me/inbox"))["items"] == []


# -- admins ------------------------------------------------------------------------------------------


async def conversations_key(h: Harness, scopes: list[str]) -> tuple[str, dict[str, str]]:
    async with h.herald.db.write() as conn:
        key, plaintext = await create_api_key(conn, "auditor", scopes)
    return key.id, {"Authorization": f"Bearer {plaintext}"}


async def test_reading_a_conversation_takes_its_own_scope_and_is_audited(
    dm: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await sent(dm, "alice", "bob", "秘密内容")
    path = "/v1/users/bob/conversations/alice/messages"
    body = assert_problem(await dm.client.get(path, headers=dm.admin()), 403)  # admin alone is not enough
    assert "conversations:read" in body["detail"]
    assert_problem(await dm.client.get(path, headers=dm.reader()), 403)
    assert (await dm.client.get("/v1/audit/conversation-reads", headers=dm.admin())).json()["items"] == []

    key_id, auditor = await conversations_key(dm, ["conversations:read"])
    caplog.set_level(logging.INFO, logger="herald.engine.direct")
    r = await dm.client.get(path, headers=auditor)
    assert r.status_code == 200, r.text
    (message,) = r.json()["items"]
    assert message["body"] == "秘密内容" and message["conversation"] == "alice"  # as bob sees it
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "herald.engine.direct"]
    assert len(lines) == 1 and key_id in lines[0] and "'bob'" in lines[0] and "秘密内容" not in lines[0]

    audit = await dm.client.get("/v1/audit/conversation-reads", headers=dm.admin())
    assert audit.status_code == 200, audit.text
    (entry,) = audit.json()["items"]
    assert entry["key_id"] == key_id and entry["key_name"] == "auditor"
    assert (entry["user_id"], entry["peer"]) == ("bob", "alice") and entry["at"] and entry["id"].startswith("cvr_")
    assert "秘密内容" not in audit.text
    # the audit is the admins': the reading key alone cannot list (or tidy) it
    assert_problem(await dm.client.get("/v1/audit/conversation-reads", headers=auditor), 403)

    # no conversation, nothing read, nothing recorded; every read of one is recorded
    assert_problem(await dm.client.get("/v1/users/bob/conversations/carol/messages", headers=auditor), 404)
    await dm.client.get(path, headers=auditor, params={"limit": 1})
    assert len((await dm.client.get("/v1/audit/conversation-reads", headers=dm.admin())).json()["items"]) == 2


async def test_an_admin_key_given_the_scope_reads(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "x")
    _, both = await conversations_key(dm, ["admin", "conversations:read"])
    r = await dm.client.get("/v1/users/alice/conversations/bob/messages", headers=both)
    assert r.status_code == 200 and r.json()["items"][0]["conversation"] == "bob"


async def test_the_audit_is_paginated(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "x")
    _, auditor = await conversations_key(dm, ["conversations:read"])
    for _ in range(3):
        assert (await dm.client.get("/v1/users/alice/conversations/bob/messages", headers=auditor)).status_code == 200
    first = (await dm.client.get("/v1/audit/conversation-reads?limit=2", headers=dm.admin())).json()
    rest = (
        await dm.client.get(f"/v1/audit/conversation-reads?limit=2&cursor={first['next_cursor']}", headers=dm.admin())
    ).json()
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 3 and rest["next_cursor"] is None
    assert ids == sorted(ids, reverse=True)  # newest first


# -- erasure -----------------------------------------------------------------------------------------


async def test_erasing_a_user_erases_their_messages_conversations_and_blocks(dm: Harness) -> None:
    await sent(dm, "alice", "bob", "from alice")
    await sent(dm, "bob", "alice", "to alice")
    await sent(dm, "carol", "bob", "from carol")
    assert (await dm.client.put("/v1/me/blocks/carol", headers=dm.user("alice"))).status_code == 200
    assert (await dm.client.put("/v1/me/blocks/alice", headers=dm.user("carol"))).status_code == 200

    assert (await dm.client.delete("/v1/users/alice", headers=dm.admin())).status_code == 204

    assert [c["peer"] for c in await conversations(dm, "bob")] == ["carol"]
    assert [i["data"]["conversation"] for i in await direct_items(dm, "bob")] == ["carol"]
    assert_problem(await dm.client.get("/v1/me/conversations/alice/messages", headers=dm.user("bob")), 404)
    assert (await get(dm, "carol", "/v1/me/blocks"))["items"] == []
    # a token alice still holds finds nothing of hers
    assert await conversations(dm, "alice") == [] and (await get(dm, "alice", "/v1/me/blocks"))["items"] == []
    assert await direct_items(dm, "alice") == []
    _, auditor = await conversations_key(dm, ["conversations:read"])
    r = await dm.client.get("/v1/users/bob/conversations/alice/messages", headers=auditor)
    assert_problem(r, 404)


def test_the_cli_creates_a_key_with_the_scope(tmp_path: Path) -> None:
    env = clean_env()
    assert herald(["migrate"], tmp_path, env).returncode == 0
    created = herald(["apikey", "create", "--name", "auditor", "--scopes", "conversations:read"], tmp_path, env)
    assert created.returncode == 0, created.stderr
    listed = herald(["apikey", "list"], tmp_path, env).stdout.strip().splitlines()
    assert listed[1].split()[3] == "conversations:read"
    unknown = herald(["apikey", "create", "--name", "x", "--scopes", "conversations:write"], tmp_path, env)
    assert unknown.returncode == 2 and "conversations:read" in unknown.stderr  # the valid ones are named
