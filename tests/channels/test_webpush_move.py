"""A Web Push endpoint another user subscribed does not silently move (issue 7, item 6).

The choice: the endpoint moves to the newest subscriber only when it comes with the same keys
(p256dh, auth) — the same browser, now signed in as someone else; with other keys it is 409 and
stays with its subscriber. Knowing someone's endpoint URL is not enough to take their pushes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from herald.store.tables import user_endpoints
from tests.api.test_webpush_api import AUTH, P256DH, subscription
from tests.conftest import Harness

ENDPOINT = "https://push.example.com/send/abc123"
OTHER_P256DH = "BOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOther0"


async def holders(h: Harness) -> list[tuple[str, str, dict[str, Any]]]:
    async with h.herald.db.read() as conn:
        rows = await conn.execute(
            select(user_endpoints.c.user_id, user_endpoints.c.address, user_endpoints.c.data).where(
                user_endpoints.c.channel == "webpush"
            )
        )
        return [(u, a, dict(d)) for u, a, d in rows]


async def subscribe(h: Harness, user: str, body: dict[str, Any]) -> int:
    r = await h.client.post("/v1/me/webpush-subscriptions", json=body, headers=h.user(user))
    return r.status_code


async def test_another_user_with_other_keys_gets_409_and_nothing_moves(harness: Harness) -> None:
    assert await subscribe(harness, "alice", subscription(ENDPOINT)) == 201
    stolen = {"endpoint": ENDPOINT, "keys": {"p256dh": OTHER_P256DH, "auth": "bWFsbG9yeWtleXM"}}
    r = await harness.client.post("/v1/me/webpush-subscriptions", json=stolen, headers=harness.user("mallory"))
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await holders(harness) == [("alice", ENDPOINT, {"p256dh": P256DH, "auth": AUTH})]


async def test_the_same_browser_signed_in_as_another_user_moves_to_them(harness: Harness) -> None:
    assert await subscribe(harness, "alice", subscription(ENDPOINT)) == 201
    assert await subscribe(harness, "bob", subscription(ENDPOINT)) == 201
    assert await holders(harness) == [("bob", ENDPOINT, {"p256dh": P256DH, "auth": AUTH})]


async def test_the_subscriber_may_renew_their_own_keys(harness: Harness) -> None:
    assert await subscribe(harness, "alice", subscription(ENDPOINT)) == 201
    renewed = {"endpoint": ENDPOINT, "keys": {"p256dh": OTHER_P256DH, "auth": AUTH}}
    assert await subscribe(harness, "alice", renewed) == 201
    assert await holders(harness) == [("alice", ENDPOINT, {"p256dh": OTHER_P256DH, "auth": AUTH})]
