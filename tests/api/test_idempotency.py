"""Idempotency-Key: a replay returns the first response and creates nothing; another body or in flight is 409."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from herald.engine import trigger as trigger_engine
from herald.store.apikeys import create_api_key
from tests.conftest import Harness

PROBLEM = "application/problem+json"


def body_for(amount: str, *to: str) -> dict[str, Any]:
    return {"type": "recharge.succeeded", "to": list(to or ["alice"]), "data": {"amount": amount}}


async def post(harness: Harness, body: Any, key: str | None, headers: dict[str, str] | None = None) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key is not None else {}
    raw = json.dumps(body).encode()
    return await harness.client.post(
        "/v1/notifications",
        content=raw,
        headers={**(headers or harness.sender()), "Content-Type": "application/json", **extra},
    )


async def inbox(harness: Harness, user: str) -> list[dict[str, Any]]:
    r = await harness.client.get("/v1/me/inbox", headers=harness.user(user))
    assert r.status_code == 200
    return r.json()["items"]  # type: ignore[no-any-return]


def assert_conflict(r: httpx.Response) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 409 and body["title"] and body["detail"]
    assert "idempotent-replayed" not in r.headers


async def test_a_replay_returns_the_first_response_byte_for_byte(harness: Harness, inbox_type: str) -> None:
    first = await post(harness, body_for("10", "alice", "bob"), "key-1")
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = await post(harness, body_for("10", "alice", "bob"), "key-1")
        assert again.status_code == 202
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"].startswith("application/json")
    for user in ("alice", "bob"):
        items = await inbox(harness, user)
        assert len(items) == 1, items
    status = await harness.client.get(f"/v1/notifications/{first.json()['id']}", headers=harness.reader())
    assert status.status_code == 200 and status.json()["recipients"] == 2


async def test_without_a_key_every_post_creates(harness: Harness, inbox_type: str) -> None:
    a = await post(harness, body_for("10"), None)
    b = await post(harness, body_for("10"), None)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert len(await inbox(harness, "alice")) == 2


async def test_the_same_key_with_another_body_is_409(harness: Harness, inbox_type: str) -> None:
    first = await post(harness, body_for("10"), "key-2")
    assert first.status_code == 202
    for other in (body_for("11"), body_for("10", "bob"), {**body_for("10"), "target": {"id": "o-1"}}):
        assert_conflict(await post(harness, other, "key-2"))
    assert [i["summary"] for i in await inbox(harness, "alice")] == ["充值 10 元"]
    assert await inbox(harness, "bob") == []
    # the original is still replayable after the conflicts
    again = await post(harness, body_for("10"), "key-2")
    assert again.status_code == 202 and again.content == first.content


async def test_keys_are_distinct_from_each_other(harness: Harness, inbox_type: str) -> None:
    a = await post(harness, body_for("10"), "key-a")
    b = await post(harness, body_for("10"), "key-b")
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert len(await inbox(harness, "alice")) == 2


async def test_keys_are_scoped_per_api_key(harness: Harness, inbox_type: str) -> None:
    async with harness.herald.db.write() as conn:
        _, other_key = await create_api_key(conn, "other sender", ["send"])
    other = {"Authorization": f"Bearer {other_key}"}
    mine = await post(harness, body_for("10"), "shared-key")
    theirs = await post(harness, body_for("10"), "shared-key", headers=other)
    assert mine.status_code == theirs.status_code == 202
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert len(await inbox(harness, "alice")) == 2
    # each replays its own first response, and a different body under the other key is its own business
    assert (await post(harness, body_for("10"), "shared-key", headers=other)).content == theirs.content
    assert (await post(harness, body_for("10"), "shared-key")).content == mine.content
    assert_conflict(await post(harness, body_for("99"), "shared-key", headers=other))


async def test_a_second_request_while_the_first_is_in_flight_is_409(
    harness: Harness, inbox_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()
    original = trigger_engine.trigger

    async def slow_trigger(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(trigger_engine, "trigger", slow_trigger)
    first = asyncio.create_task(post(harness, body_for("10"), "key-flight"))
    await asyncio.wait_for(entered.wait(), timeout=10)

    second = await post(harness, body_for("10"), "key-flight")
    assert_conflict(second)
    # another body while in flight is a conflict too, and nothing has been written yet
    assert_conflict(await post(harness, body_for("11"), "key-flight"))
    assert await inbox(harness, "alice") == []

    release.set()
    done = await asyncio.wait_for(first, timeout=10)
    assert done.status_code == 202, done.text
    replay = await post(harness, body_for("10"), "key-flight")
    assert replay.status_code == 202 and replay.content == done.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(await inbox(harness, "alice")) == 1


async def test_a_crash_inside_the_engine_releases_the_key(
    harness: Harness, inbox_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = trigger_engine.trigger

    async def flaky_trigger(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await original(*args, **kwargs)

    monkeypatch.setattr(trigger_engine, "trigger", flaky_trigger)
    with pytest.raises(RuntimeError, match="database went away"):  # the test client re-raises what became a 500
        await harness.trigger(body_for("10"), **{"Idempotency-Key": "key-crash"})
    assert calls == 1
    # the retry is not stuck behind an in-flight claim, and it is not a replay of the 500
    r = await harness.trigger(body_for("10"), **{"Idempotency-Key": "key-crash"})
    assert r.status_code == 202, r.text
    assert "idempotent-replayed" not in r.headers
    assert len(await inbox(harness, "alice")) == 1


async def test_a_refused_request_does_not_burn_the_key(harness: Harness, inbox_type: str) -> None:
    bad = {"type": "recharge.succeeded", "to": ["alice"], "data": {}}  # missing ${amount}: refused by the engine
    for _ in range(2):
        r = await post(harness, bad, "key-retry")
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "idempotent-replayed" not in r.headers
    schema_bad = {**body_for("10"), "bogus": True}  # refused before the engine is reached
    r = await post(harness, schema_bad, "key-retry")
    assert r.status_code == 422 and "idempotent-replayed" not in r.headers
    assert await inbox(harness, "alice") == []

    fixed = await post(harness, body_for("10"), "key-retry")
    assert fixed.status_code == 202, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    again = await post(harness, body_for("10"), "key-retry")
    assert again.content == fixed.content and again.headers["idempotent-replayed"] == "true"
    # once it has succeeded, the old bad body under that key is another body
    assert_conflict(await post(harness, bad, "key-retry"))
    assert len(await inbox(harness, "alice")) == 1


@pytest.mark.parametrize("key", ["", "x" * 256])
async def test_a_malformed_key_is_400(harness: Harness, inbox_type: str, key: str) -> None:
    r = await post(harness, body_for("10"), key)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert [e["field"] for e in r.json()["errors"]] == ["Idempotency-Key"]
    assert await inbox(harness, "alice") == []


async def test_a_key_of_255_characters_is_fine(harness: Harness, inbox_type: str) -> None:
    key = "k" * 255
    first = await post(harness, body_for("10"), key)
    assert first.status_code == 202
    assert (await post(harness, body_for("10"), key)).content == first.content
    assert len(await inbox(harness, "alice")) == 1


# -- announcements ------------------------------------------------------------------------------------


async def announce(harness: Harness, body: dict[str, Any], key: str) -> httpx.Response:
    return await harness.client.post(
        "/v1/announcements",
        content=json.dumps(body).encode(),
        headers={**harness.admin(), "Content-Type": "application/json", "Idempotency-Key": key},
    )


async def list_announcements(harness: Harness) -> list[dict[str, Any]]:
    r = await harness.client.get("/v1/announcements", headers=harness.reader())
    assert r.status_code == 200
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_announcement_replay_creates_one(harness: Harness) -> None:
    body = {"title": "系统升级通知", "kind": "notice", "audience": {"all": True}}
    first = await announce(harness, body, "ann-1")
    assert first.status_code == 201, first.text
    again = await announce(harness, body, "ann-1")
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert [a["id"] for a in await list_announcements(harness)] == [first.json()["id"]]
    feed = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert [i["id"] for i in feed] == [first.json()["id"]]


async def test_announcement_key_with_another_body_is_409(harness: Harness) -> None:
    first = await announce(harness, {"title": "one"}, "ann-2")
    assert first.status_code == 201
    assert_conflict(await announce(harness, {"title": "two"}, "ann-2"))
    assert [a["title"] for a in await list_announcements(harness)] == ["one"]


async def test_announcement_refused_does_not_burn_the_key(harness: Harness) -> None:
    bad = {"title": "t", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}
    assert (await announce(harness, bad, "ann-3")).status_code == 422
    good = await announce(harness, {"title": "t"}, "ann-3")
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers
    assert len(await list_announcements(harness)) == 1


async def test_idempotency_keys_of_notifications_and_announcements_do_not_collide(
    harness: Harness, inbox_type: str
) -> None:
    """The same key string on two endpoints with the admin key: the request hash covers the path."""
    ann = await announce(harness, {"title": "t"}, "same")
    assert ann.status_code == 201
    r = await post(harness, body_for("10"), "same", headers=harness.admin())
    assert r.status_code in (202, 409), r.text
    assert r.status_code != 201 and "idempotent-replayed" not in r.headers


async def test_token_minting_replay_returns_the_same_token(harness: Harness) -> None:
    headers = {**harness.sender(), "Idempotency-Key": "tok-1"}
    first = await harness.client.post("/v1/users/alice/tokens", json={"expires_in": 600}, headers=headers)
    assert first.status_code == 201, first.text
    again = await harness.client.post("/v1/users/alice/tokens", json={"expires_in": 600}, headers=headers)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    other = await harness.client.post("/v1/users/alice/tokens", json={"expires_in": 700}, headers=headers)
    assert_conflict(other)
