"""Web Push subscriptions: saved per user, SSRF-checked, forgotten when the push service says gone."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from herald.channels.base import Channel, ChannelSettings, OutboundMessage, SendResult
from herald.store.tables import deliveries, user_endpoints
from tests.conftest import Harness

P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH = "tBHItJI5svbpez7KI4CCXg"


def subscription(endpoint: str) -> dict[str, Any]:
    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": P256DH, "auth": AUTH}}


async def stored(h: Harness) -> list[tuple[str, str]]:
    async with h.herald.db.read() as conn:
        rows = await conn.execute(
            select(user_endpoints.c.user_id, user_endpoints.c.address).where(user_endpoints.c.channel == "webpush")
        )
        return sorted((u, e) for u, e in rows)


async def test_subscribe_and_unsubscribe_own_endpoints_only(harness: Harness) -> None:
    ep = "https://push.example.com/send/abc"
    r = await harness.client.post("/v1/me/webpush-subscriptions", json=subscription(ep), headers=harness.user("alice"))
    assert r.status_code == 201, r.text
    assert await stored(harness) == [("alice", ep)]
    # bob cannot remove alice's browser
    r = await harness.client.request(
        "DELETE", "/v1/me/webpush-subscriptions", json={"endpoint": ep}, headers=harness.user("bob")
    )
    assert r.status_code == 404
    assert await stored(harness) == [("alice", ep)]
    r = await harness.client.request(
        "DELETE", "/v1/me/webpush-subscriptions", json={"endpoint": ep}, headers=harness.user("alice")
    )
    assert r.status_code == 204
    assert await stored(harness) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.com/x",  # not https
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://localhost/x",  # resolves to loopback
        "https://user:pw@push.example.com/x",
    ],
)
async def test_private_endpoints_are_refused(harness: Harness, endpoint: str) -> None:
    harness.herald.settings.allow_private_urls = False
    r = await harness.client.post(
        "/v1/me/webpush-subscriptions", json=subscription(endpoint), headers=harness.user("alice")
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "endpoint"
    assert await stored(harness) == []


async def test_bad_keys_are_422(harness: Harness) -> None:
    body = {"endpoint": "https://push.example.com/x", "keys": {"p256dh": "not base64!", "auth": AUTH}}
    r = await harness.client.post("/v1/me/webpush-subscriptions", json=body, headers=harness.user("alice"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "keys.p256dh"


class _Settings(ChannelSettings):
    vapid_subject: str
    vapid_private_key: SecretStr | None = None
    vapid_public_key: str | None = None


class FakePush(Channel):
    """Stands in for webpush: endpoints containing 'gone' are reported gone."""

    name = "webpush"
    Settings = _Settings
    requires_template = False
    uses_endpoints: ClassVar[bool] = True

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        endpoints = [e.address for e in message.recipient.endpoints]
        self.seen.append(endpoints)
        return SendResult(gone=tuple(e for e in endpoints if "gone" in e))


async def test_the_engine_passes_subscriptions_and_forgets_gone_ones(harness: Harness) -> None:
    push = FakePush()
    harness.herald.channels["webpush"] = push
    r = await harness.client.put(
        "/v1/channel-accounts/push",
        json={
            "channel": "webpush",
            "config": {"vapid_subject": "mailto:ops@example.com", "vapid_private_key": "k", "vapid_public_key": "PUB"},
        },
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    assert (await harness.client.get("/v1/webpush/public-key")).json()["public_key"] == "PUB"
    for ep in ("https://push.example.com/live", "https://push.example.com/gone"):
        await harness.client.post("/v1/me/webpush-subscriptions", json=subscription(ep), headers=harness.user("alice"))
    await harness.client.post(
        "/v1/me/webpush-subscriptions",
        json=subscription("https://push.example.com/gone-2"),
        headers=harness.user("bob"),
    )
    await harness.put_type("chat.new", ["webpush"], {})
    await harness.trigger({"type": "chat.new", "to": ["alice", "bob"], "data": {}})
    await harness.drain()
    assert sorted(map(sorted, push.seen)) == [
        ["https://push.example.com/gone", "https://push.example.com/live"],
        ["https://push.example.com/gone-2"],
    ]
    assert await stored(harness) == [("alice", "https://push.example.com/live")]
    async with harness.herald.db.read() as conn:
        rows = dict(
            (u, (s, r))
            for u, s, r in await conn.execute(select(deliveries.c.user_id, deliveries.c.status, deliveries.c.reason))
        )
    assert rows["alice"][0] == "sent"
    assert rows["bob"] == ("skipped", "gone")


async def test_no_public_key_without_an_account(harness: Harness) -> None:
    assert (await harness.client.get("/v1/webpush/public-key")).status_code == 404


async def test_vapid_keys_are_generated_on_first_save_and_kept(harness: Harness) -> None:
    config = {"vapid_subject": "mailto:ops@example.com"}
    r = await harness.client.put(
        "/v1/channel-accounts/push", json={"channel": "webpush", "config": config}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["vapid_private_key"] == "********"
    public = (await harness.client.get("/v1/webpush/public-key")).json()["public_key"]
    import base64

    raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point: the applicationServerKey
    r = await harness.client.put(
        "/v1/channel-accounts/push",
        json={"channel": "webpush", "config": {**config, "ttl": 3600}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    assert (await harness.client.get("/v1/webpush/public-key")).json()["public_key"] == public
