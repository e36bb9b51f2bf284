"""WebPushChannel against a fake push service (uvicorn on loopback) playing the browser's side.

The fake never uses herald code: it verifies the VAPID JWT with PyJWT (RFC 8292), and decrypts each
body twice — with ``http_ece`` and with an RFC 8291 decryption written here from the spec on top of
``cryptography`` — using a key pair and auth secret the test generated as a browser would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.webpush import (
    MAX_PAYLOAD_BYTES,
    WebPushChannel,
    WebPushRetryableError,
    WebPushSettings,
    WebPushTerminalError,
    encode_payload,
    generate_vapid_keys,
    public_key_of,
)
from herald.core.errors import RetryableError, SkipDelivery, TerminalError
from herald.core.records import Endpoint
from tests.support import serve_asgi

SUBJECT = "mailto:ops@example.com"
PRIVATE_KEY, PUBLIC_KEY = generate_vapid_keys()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass
class Browser:
    """One browser's push subscription: its P-256 key pair and auth secret, as PushManager makes them."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "keys": {"p256dh": b64url(uncompressed(self.private_key.public_key())), "auth": b64url(self.auth)},
        }


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def rfc8291_decrypt(body: bytes, browser: Browser) -> bytes:
    """RFC 8291 section 3 + RFC 8188, single record, from the spec."""
    salt, record_size, id_len = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender_public = body[21 : 21 + id_len]
    ciphertext = body[21 + id_len :]
    assert id_len == 65 and len(ciphertext) <= record_size
    server_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
    ecdh_secret = browser.private_key.exchange(ec.ECDH(), server_key)
    key_info = b"WebPush: info\x00" + uncompressed(browser.private_key.public_key()) + sender_public
    ikm = hkdf(browser.auth, ecdh_secret, key_info, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None).rstrip(b"\x00")
    assert padded.endswith(b"\x02")  # the last record's delimiter
    return padded[:-1]


@dataclass
class PushRequest:
    path: str
    headers: dict[str, str]
    claims: dict[str, Any]
    vapid_key: str
    payload: Any


@dataclass
class PushService:
    """A raw ASGI push service: ``/push/{name}`` delivers to the browser registered under that name."""

    browsers: dict[str, Browser] = field(default_factory=dict)
    statuses: dict[str, tuple[int, list[tuple[bytes, bytes]]]] = field(default_factory=dict)
    requests: list[PushRequest] = field(default_factory=list)
    origin: str = ""

    def reset(self) -> None:
        self.browsers.clear()
        self.statuses.clear()
        self.requests.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        name = scope["path"].rsplit("/", 1)[-1]
        browser = self.browsers[name]

        scheme, _, params = headers["authorization"].partition(" ")
        assert scheme == "vapid"
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        vapid_key = fields["k"]
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(vapid_key))
        claims = jwt.decode(
            fields["t"], key, algorithms=["ES256"], audience=self.origin, options={"require": ["aud", "exp", "sub"]}
        )
        assert headers["content-encoding"] == "aes128gcm"
        plaintext = rfc8291_decrypt(body, browser)
        assert http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth) == plaintext
        self.requests.append(PushRequest(scope["path"], headers, claims, vapid_key, json.loads(plaintext)))

        status, extra = self.statuses.get(name, (201, [(b"location", f"{self.origin}/msg/{name}".encode())]))
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b"" if status < 300 else b"push service says no"})


@pytest.fixture(scope="module")
def push_server(port_factory: Callable[[], int]) -> Iterator[PushService]:
    service = PushService()
    with serve_asgi(service, port_factory()) as base:
        service.origin = base
        yield service


@pytest.fixture
def push(push_server: PushService, monkeypatch: pytest.MonkeyPatch) -> PushService:
    push_server.reset()
    return push_server


@pytest.fixture
async def channel() -> AsyncIterator[WebPushChannel]:
    chan = WebPushChannel()
    chan.allow_private_urls = True  # HERALD_ALLOW_PRIVATE_URLS as bound by the engine: the fake is on loopback
    yield chan
    await chan.aclose()


def settings(**overrides: Any) -> WebPushSettings:
    return WebPushSettings.model_validate(
        {"vapid_subject": SUBJECT, "vapid_private_key": PRIVATE_KEY, "vapid_public_key": PUBLIC_KEY, **overrides}
    )


def subscribe(push: PushService, *names: str) -> list[dict[str, Any]]:
    subs = []
    for name in names:
        push.browsers[name] = Browser()
        subs.append(push.browsers[name].subscription(f"{push.origin}/push/{name}"))
    return subs


def endpoints_of(subs: list[dict[str, Any]]) -> tuple[Endpoint, ...]:
    """Subscriptions as the engine hands them over: the endpoint as the address, the keys as data."""
    return tuple(Endpoint(s["endpoint"], dict(s.get("keys", {}))) for s in subs)


def message_to(
    make_message: Callable[..., OutboundMessage], subs: list[dict[str, Any]], **overrides: Any
) -> OutboundMessage:
    recipient = Recipient(id="u1", name="张三", endpoints=endpoints_of(subs))
    return make_message(recipient=recipient, **overrides)


def test_uses_the_endpoints_users_register() -> None:
    assert WebPushChannel.uses_endpoints
    paths = {(r.method, r.path, r.auth) for r in WebPushChannel().routes()}
    assert paths == {
        ("GET", "/v1/webpush/public-key", "public"),
        ("POST", "/v1/me/webpush-subscriptions", "user"),
        ("DELETE", "/v1/me/webpush-subscriptions", "user"),
    }


def test_registered_as_webpush() -> None:
    assert CHANNELS["webpush"] is WebPushChannel
    assert WebPushSettings.secret_fields() == ["vapid_private_key"]


async def test_delivers_an_encrypted_payload_signed_with_vapid(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    subs = subscribe(push, "chrome")
    content = {
        "title": "充值成功",
        "body": "您已成功充值 100.00 元。",
        "action_url": "https://app.example.com/orders/1",
    }
    before = int(time.time())

    result = await channel.send(message_to(make_message, subs, content=content), settings(ttl=3600, urgency="high"))

    assert (result.detail, result.gone) == ("1/1", ())
    assert result.provider_message_id == f"{push.origin}/msg/chrome"
    (request,) = push.requests
    assert request.payload == {
        "title": "充值成功",
        "body": "您已成功充值 100.00 元。",
        "url": "https://app.example.com/orders/1",
        "data": {"amount": "100.00"},
        "notification_id": "ntf_01J9ZK3M8Q7W5E2R4T6Y8U0I1P",
        "delivery_id": "dlv_01J9ZK3M8Q7W5E2R4T6Y8U0I1O",
        "type": "recharge.succeeded",
    }
    assert request.headers["ttl"] == "3600"
    assert request.headers["urgency"] == "high"
    assert request.vapid_key == PUBLIC_KEY
    assert request.claims["sub"] == SUBJECT
    assert request.claims["aud"] == push.origin
    assert before < request.claims["exp"] <= before + 24 * 3600 + 5


async def test_payload_falls_back_to_summary_and_type(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    subs = subscribe(push, "firefox")

    await channel.send(message_to(make_message, subs, content={"summary": "简讯", "url": "/inbox"}), settings())

    payload = push.requests[0].payload
    assert (payload["title"], payload["body"], payload["url"]) == ("recharge.succeeded", "简讯", "/inbox")
    assert push.requests[0].headers["urgency"] == "normal"
    assert push.requests[0].headers["ttl"] == "86400"


async def test_sends_to_every_subscription_once(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    subs = subscribe(push, "laptop", "phone")

    result = await channel.send(message_to(make_message, [*subs, subs[0]]), settings())

    assert result.detail == "2/2"
    assert sorted(r.path for r in push.requests) == ["/push/laptop", "/push/phone"]


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_subscription_is_reported_gone(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage], status: int
) -> None:
    live, expired = subscribe(push, "live", "expired")
    push.statuses["expired"] = (status, [])

    result = await channel.send(message_to(make_message, [live, expired]), settings())

    assert result.detail == "1/2"
    assert result.gone == (expired["endpoint"],)


async def test_every_subscription_gone_is_a_result_without_provider_id(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    subs = subscribe(push, "a", "b")
    push.statuses.update({"a": (410, []), "b": (404, [])})

    result = await channel.send(message_to(make_message, subs), settings())

    assert result.provider_message_id is None
    assert result.detail == "no live subscription"
    assert set(result.gone) == {s["endpoint"] for s in subs}


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_retryable(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage], status: int
) -> None:
    subs = subscribe(push, "busy")
    push.statuses["busy"] = (status, [(b"retry-after", b"30")])

    with pytest.raises(RetryableError) as raised:
        await channel.send(message_to(make_message, subs), settings())

    assert (raised.value.code, raised.value.retry_after) == (str(status), 30)


async def test_mixed_failures_retry_and_still_name_the_gone(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    busy, expired, refused = subscribe(push, "busy", "expired", "refused")
    push.statuses.update({"busy": (502, []), "expired": (410, []), "refused": (400, [])})

    with pytest.raises(RetryableError) as raised:
        await channel.send(message_to(make_message, [busy, expired, refused]), settings())

    assert raised.value.retry_after is None
    assert isinstance(raised.value, WebPushRetryableError)
    assert raised.value.gone == (expired["endpoint"],)


async def test_a_success_wins_over_other_failures(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    ok, busy, refused = subscribe(push, "ok", "busy", "refused")
    push.statuses.update({"busy": (500, []), "refused": (403, [])})

    result = await channel.send(message_to(make_message, [ok, busy, refused]), settings())

    assert (result.detail, result.gone) == ("1/3", ())


@pytest.mark.parametrize("status", [400, 401, 403, 413, 307])
async def test_other_answers_are_terminal(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage], status: int
) -> None:
    subs = subscribe(push, "bad")
    push.statuses["bad"] = (status, [(b"location", f"{push.origin}/push/bad".encode())])

    with pytest.raises(TerminalError) as raised:
        await channel.send(message_to(make_message, subs), settings())

    assert raised.value.code == str(status)
    assert len(push.requests) == 1  # a redirect is not followed


async def test_malformed_subscription_keys_are_terminal(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    bad_point = {"endpoint": f"{push.origin}/push/x", "keys": {"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": "AA"}}
    no_keys = {"endpoint": f"{push.origin}/push/y"}

    with pytest.raises(TerminalError, match="subscription") as raised:
        await channel.send(message_to(make_message, [bad_point, no_keys]), settings())

    assert isinstance(raised.value, WebPushTerminalError)
    assert raised.value.gone == ()
    assert push.requests == []


async def test_nothing_listening_is_retryable(
    channel: WebPushChannel,
    push: PushService,
    port_factory: Callable[[], int],
    make_message: Callable[..., OutboundMessage],
) -> None:
    sub = Browser().subscription(f"http://127.0.0.1:{port_factory()}/push/nobody")

    with pytest.raises(RetryableError, match="ConnectionError"):
        await channel.send(message_to(make_message, [sub]), settings())


@pytest.mark.parametrize("subs", [[], [{"endpoint": ""}], [{"endpoint": "", "keys": {"auth": "x"}}]])
async def test_no_subscription_skips(
    channel: WebPushChannel, make_message: Callable[..., OutboundMessage], subs: list[dict[str, Any]]
) -> None:
    with pytest.raises(SkipDelivery, match="no Web Push subscription"):
        await channel.send(message_to(make_message, subs), settings())


async def test_missing_vapid_keys_are_terminal(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    subs = subscribe(push, "chrome")

    with pytest.raises(TerminalError, match="VAPID keys missing"):
        await channel.send(message_to(make_message, subs), settings(vapid_private_key=None, vapid_public_key=None))


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:{port}/push/chrome",  # plain http
        "https://127.0.0.1:{port}/push/chrome",  # a loopback literal
        "https://[::1]:{port}/push/chrome",
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://10.1.2.3/push",
        "https://localhost:{port}/push/chrome",  # a name resolving to loopback
    ],
)
async def test_private_endpoints_are_refused_without_the_override(
    channel: WebPushChannel,
    push_server: PushService,
    make_message: Callable[..., OutboundMessage],
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
) -> None:
    channel.allow_private_urls = False
    push_server.reset()
    port = push_server.origin.rsplit(":", 1)[1]
    push_server.browsers["chrome"] = Browser()
    sub = push_server.browsers["chrome"].subscription(endpoint.format(port=port))

    with pytest.raises(TerminalError, match="endpoint refused"):
        await channel.send(message_to(make_message, [sub]), settings())

    assert push_server.requests == []


async def test_concurrent_sends_share_nothing(
    channel: WebPushChannel, push: PushService, make_message: Callable[..., OutboundMessage]
) -> None:
    subs = subscribe(push, "one", "two", "three")

    results = await asyncio.gather(*(channel.send(message_to(make_message, [s]), settings()) for s in subs))

    assert [r.detail for r in results] == ["1/1"] * 3
    assert len(push.requests) == 3


def test_large_data_is_dropped_then_body_cut(make_message: Callable[..., OutboundMessage]) -> None:
    big = make_message(content={"title": "t", "body": "长" * 3000}, data={"blob": "x" * 5000})

    payload = json.loads(encode_payload(big))

    assert len(encode_payload(big).encode()) <= MAX_PAYLOAD_BYTES
    assert payload["data"] == {}
    assert payload["body"].endswith("…") and len(payload["body"]) > 1000
    assert json.loads(encode_payload(make_message()))["data"] == {"amount": "100.00"}


def test_generate_vapid_keys_formats() -> None:
    private_key, public_key = generate_vapid_keys()

    private_raw, public_raw = unb64url(private_key), unb64url(public_key)
    assert "=" not in private_key + public_key
    assert len(private_raw) == 32
    assert len(public_raw) == 65 and public_raw[0] == 0x04
    derived = ec.derive_private_key(int.from_bytes(private_raw, "big"), ec.SECP256R1()).public_key()
    assert uncompressed(derived) == public_raw
    assert public_key_of(private_key) == public_key
    assert generate_vapid_keys() != (private_key, public_key)


@pytest.mark.parametrize(
    "overrides",
    [
        {"vapid_subject": "ops@example.com"},
        {"vapid_subject": "http://example.com"},
        {"vapid_subject": "mailto:"},
        {"vapid_private_key": "not-a-key"},
        {"vapid_private_key": b64url(b"\x01" * 31)},
        {"vapid_private_key": b64url(b"\x00" * 32)},
        {"vapid_public_key": b64url(b"\x04" + b"\x01" * 64)},  # not on the curve
        {"vapid_public_key": PRIVATE_KEY},
        {"ttl": 0},
        {"ttl": 2419201},
        {"urgency": "urgent"},
        {"timeout": 0},
        {"unknown": 1},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**overrides)


def test_settings_defaults_and_secret_masking() -> None:
    parsed = WebPushSettings.model_validate({"vapid_subject": "https://example.com/contact"})
    assert (parsed.vapid_private_key, parsed.vapid_public_key) == (None, None)
    assert (parsed.ttl, parsed.urgency, parsed.timeout) == (86400, "normal", 10)

    assert PRIVATE_KEY not in settings().model_dump_json()
    assert settings(ttl=2419200).ttl == 2419200
