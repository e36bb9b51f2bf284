"""WebhookChannel against a real HTTP receiver (uvicorn on loopback) that verifies signatures itself.

The receiver checks signatures straight from the Standard Webhooks spec, never with herald's ``sign``,
so a bug in ``sign`` cannot hide behind a matching bug in the check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage
from herald.channels.webhook import WebhookChannel, WebhookSettings, parse_retry_after, sign
from herald.core.backoff import MAX_RETRY_AFTER_SECONDS
from herald.core.errors import RetryableError, TerminalError
from tests.support import SECRET, Receiver, serve_asgi


@pytest.fixture(scope="module")
def receiver_server(port_factory: Callable[[], int]) -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with serve_asgi(receiver, port_factory()) as base:
        yield receiver, f"{base}/hooks/herald"


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, str]) -> Receiver:
    receiver_server[0].reset()
    return receiver_server[0]


@pytest.fixture
def url(receiver_server: tuple[Receiver, str]) -> str:
    return receiver_server[1]


@pytest.fixture
async def channel() -> AsyncIterator[WebhookChannel]:
    chan = WebhookChannel()
    yield chan
    await chan.aclose()


def settings(url: str, **overrides: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"url": url, "secret": SECRET, **overrides})


def test_registered_as_webhook() -> None:
    assert CHANNELS["webhook"] is WebhookChannel
    assert not WebhookChannel.requires_template


async def test_posts_a_signed_standard_webhook(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(attempt=2)
    before = int(time.time())

    result = await channel.send(message, settings(url, headers={"X-Tenant": "acme"}))

    assert result.detail == "HTTP 200"
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/herald")
    assert request.signature_valid
    assert request.headers["webhook-id"] == message.delivery_id
    assert before <= int(request.headers["webhook-timestamp"]) <= int(time.time())
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Herald-Webhooks/0.1"
    assert request.headers["x-tenant"] == "acme"


async def test_body_carries_the_delivery_as_compact_utf8_json(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(attempt=3)

    await channel.send(message, settings(url))

    [request] = receiver.requests
    payload = request.json()
    assert "充值成功".encode() in request.body  # not \\u-escaped
    assert request.body == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert payload["type"] == "notification.delivery"
    sent_at = datetime.fromisoformat(payload["timestamp"])
    assert sent_at.tzinfo is not None
    assert abs(sent_at.timestamp() - int(request.headers["webhook-timestamp"])) < 1
    assert payload["data"] == {
        "delivery_id": message.delivery_id,
        "notification_id": message.notification_id,
        "notification_type": "recharge.succeeded",
        "category": "reminder",
        "recipient": {"id": "u1", "name": "张三", "email": "zhangsan@example.com", "phone": "+8613800000000"},
        "content": {"title": "充值成功", "body": "您已成功充值 100.00 元。"},
        "data": {"amount": "100.00"},
        "attempt": 3,
    }


async def test_retries_keep_the_webhook_id(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(attempt=1), settings(url))
    await channel.send(make_message(attempt=2), settings(url))

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.signature_valid and second.signature_valid


async def test_a_plain_secret_signs_with_its_utf8_bytes(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    receiver.key = "不是 whsec 的密钥".encode()

    await channel.send(make_message(), settings(url, secret="不是 whsec 的密钥"))

    assert receiver.requests[0].signature_valid


async def test_an_account_may_replace_the_user_agent(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(), settings(url, headers={"User-Agent": "Acme/1"}))

    assert receiver.requests[0].headers["user-agent"] == "Acme/1"


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_are_retryable(
    channel: WebhookChannel,
    receiver: Receiver,
    url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
) -> None:
    receiver.status = status

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(url))

    assert raised.value.code == str(status)
    assert raised.value.retry_after is None


async def test_429_honours_retry_after_seconds(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    receiver.status, receiver.headers = 429, [(b"retry-after", b"7")]

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(url))

    assert (raised.value.code, raised.value.retry_after) == ("429", 7)


async def test_503_honours_retry_after_http_date(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    receiver.status, receiver.headers = 503, [(b"retry-after", later.encode())]

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(url))

    assert raised.value.retry_after is not None
    assert 110 <= raised.value.retry_after <= 120


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
async def test_other_answers_are_terminal(
    channel: WebhookChannel,
    receiver: Receiver,
    url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
) -> None:
    receiver.status, receiver.body = status, ("无效的请求 " + "x" * 500).encode()
    receiver.headers = [(b"location", b"http://127.0.0.1:1/elsewhere")]

    with pytest.raises(TerminalError) as raised:
        await channel.send(make_message(), settings(url))

    assert raised.value.code == str(status)
    assert "无效的请求" in raised.value.message
    assert len(raised.value.message) < 260  # the response text is cut to 200 characters
    assert len(receiver.requests) == 1  # the redirect was not followed


async def test_nothing_listening_is_retryable(
    channel: WebhookChannel, port_factory: Callable[[], int], make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(f"http://127.0.0.1:{port_factory()}/"))

    assert raised.value.code is None


async def test_slow_receiver_times_out_as_retryable(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    receiver.delay = 1

    with pytest.raises(RetryableError, match="Timeout"):
        await channel.send(make_message(), settings(url, timeout=0.2))


async def test_aclose_releases_the_client_and_a_later_send_reopens_it(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(), settings(url))
    await channel.aclose()
    await channel.aclose()  # idempotent at shutdown

    await channel.send(make_message(), settings(url))

    assert len(receiver.requests) == 2


def test_sign_known_answer() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, timestamp, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    digest = hmac.new(key, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()

    assert sign(secret, msg_id, timestamp, body) == expected
    # The spec's own published example for these inputs.
    assert expected == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_with_a_plain_secret_uses_its_utf8_bytes() -> None:
    digest = hmac.new("密钥".encode(), b"dlv_1.1700000000.{}", hashlib.sha256).digest()

    assert sign("密钥", "dlv_1", 1700000000, b"{}") == "v1," + base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("soon", None),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: retry now, never negative
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)

    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 60


@pytest.mark.parametrize(
    "overrides",
    [
        {"url": "ftp://example.com/hook"},
        {"url": "example.com/hook"},
        {"url": "http://"},
        {"secret": "whsec_not*base64!"},
        {"secret": ""},
        {"headers": {"webhook-signature": "v1,forged"}},
        {"headers": {"Content-Type": "text/plain"}},
        {"headers": {"X-Evil": "a\r\nInjected: 1"}},
        {"timeout": 0},
        {"unknown": 1},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookSettings.model_validate({"url": "https://example.com/hook", "secret": SECRET, **overrides})


def test_settings_defaults_and_secret_masking() -> None:
    parsed = settings("https://example.com/hook")

    assert (parsed.timeout, parsed.headers) == (10, {})
    assert SECRET not in parsed.model_dump_json()
    assert WebhookSettings.secret_fields() == ["secret"]


async def test_content_with_no_utf8_form_is_terminal_and_nothing_is_sent(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(content={"title": "充值成功", "body": "lone \ud800 surrogate"}, data={"k": "\udfff"})

    with pytest.raises(TerminalError, match="payload is not valid UTF-8"):
        await channel.send(message, settings(url))

    assert receiver.requests == []


async def test_an_absurd_retry_after_is_clamped_or_ignored(
    channel: WebhookChannel, receiver: Receiver, url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    receiver.status = 503
    for header, expected in [(b"99999999999999", MAX_RETRY_AFTER_SECONDS), (b"-1", None), (b"NaN", None)]:
        receiver.headers = [(b"retry-after", header)]
        with pytest.raises(RetryableError) as raised:
            await channel.send(make_message(), settings(url))
        assert raised.value.retry_after == expected, header
