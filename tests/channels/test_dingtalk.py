"""DingTalkChannel against a fake robot API (uvicorn on loopback).

The fake records requests; the tests check them against DingTalk's documented format and recompute
the 加签 signature from the documented algorithm (HMAC-SHA256 over "{timestamp}\\n{secret}", keyed by the
secret, base64, then URL-encoded), never with herald's ``sign``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, RateLimit, Recipient
from herald.channels.dingtalk import DingTalkChannel, DingTalkSettings, DingTalkTemplate, local_mobile, sign
from herald.core.errors import RetryableError, TerminalError
from tests.channels.fakes_robots import FakeRobot, running_robot

TOKEN = "6d7e0b1f3c2a4e5d8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"
SECRET = "SEC5a3ecf88f2b3eb50db30ecfc00f53033ac909c99bf7f88fd612bda89d7f3a9dc"
OK = {"errcode": 0, "errmsg": "ok"}


def documented_sign(secret: str, timestamp: str) -> str:
    """DingTalk's published Python sample, step by step (before the final urlEncode)."""
    secret_enc = secret.encode("utf-8")
    string_to_sign_enc = f"{timestamp}\n{secret}".encode()
    hmac_code = hmac.new(secret_enc, string_to_sign_enc, digestmod=hashlib.sha256).digest()
    return base64.b64encode(hmac_code).decode()


@pytest.fixture(scope="module")
def robot_server(port_factory: Callable[[], int]) -> Iterator[tuple[FakeRobot, str]]:
    with running_robot(port_factory(), OK) as server:
        yield server


@pytest.fixture
def robot(robot_server: tuple[FakeRobot, str]) -> FakeRobot:
    robot_server[0].reset(OK)
    return robot_server[0]


@pytest.fixture
def base_url(robot_server: tuple[FakeRobot, str]) -> str:
    return robot_server[1]


@pytest.fixture
async def channel() -> AsyncIterator[DingTalkChannel]:
    chan = DingTalkChannel()
    yield chan
    await chan.aclose()


def settings(base_url: str, **overrides: Any) -> DingTalkSettings:
    return DingTalkSettings.model_validate({"access_token": TOKEN, "secret": SECRET, "base_url": base_url, **overrides})


def content(**fields: Any) -> dict[str, Any]:
    return {"msgtype": "markdown", "title": "充值成功", "text": "### 充值成功\n您已成功充值 100.00 元。", **fields}


def test_registered_with_its_limits() -> None:
    assert CHANNELS["dingtalk"] is DingTalkChannel
    assert DingTalkChannel.rate_limit == RateLimit(20, 60)
    assert DingTalkChannel.Template is DingTalkTemplate
    assert DingTalkChannel.requires_template


async def test_signed_markdown_message(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    before = int(time.time() * 1000)

    result = await channel.send(make_message(content=content()), settings(base_url))

    after = int(time.time() * 1000)
    assert result.detail == "ok"
    [request] = robot.requests
    assert (request.method, request.path) == ("POST", "/robot/send")
    query = request.query
    assert set(query) == {"access_token", "timestamp", "sign"}
    assert query["access_token"] == TOKEN
    assert before <= int(query["timestamp"]) <= after  # milliseconds
    expected = documented_sign(SECRET, query["timestamp"])
    assert query["sign"] == expected
    # Sent URL-encoded exactly once, as the docs' quote_plus does.
    assert f"sign={quote_plus(expected)}" in request.raw_query
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == {
        "msgtype": "markdown",
        "markdown": {"title": "充值成功", "text": "### 充值成功\n您已成功充值 100.00 元。"},
        "at": {"atMobiles": [], "atUserIds": [], "isAtAll": False},
    }
    assert "充值成功".encode() in request.body  # UTF-8, not \\u escapes


async def test_without_a_secret_nothing_is_signed(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(content=content()), settings(base_url, secret=None))

    assert robot.requests[0].query == {"access_token": TOKEN}


async def test_text_at_the_recipient_by_mobile_and_user_id(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    recipient = Recipient(id="u1", phone="+86 138-0000-0000", channels={"dingtalk_userid": "manager4220"})
    message = make_message(recipient=recipient, content={"msgtype": "text", "text": "提现已到账", "at_recipient": True})

    await channel.send(message, settings(base_url))

    assert robot.requests[0].json() == {
        "msgtype": "text",
        "text": {"content": "提现已到账 @13800000000 @manager4220"},
        "at": {"atMobiles": ["13800000000"], "atUserIds": ["manager4220"], "isAtAll": False},
    }


async def test_markdown_at_all_and_a_mention_already_in_the_text(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(content=content(text="请 @13800000000 处理", at_recipient="true", at_all=True))

    await channel.send(message, settings(base_url))

    body = robot.requests[0].json()
    assert body["markdown"]["text"] == "请 @13800000000 处理"
    assert body["at"] == {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": True}


async def test_at_recipient_without_a_phone_or_user_id_sends_without_mentions(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(recipient=Recipient(id="u2"), content=content(at_recipient=True))

    await channel.send(message, settings(base_url))

    assert robot.requests[0].json()["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}


async def test_action_card_with_one_button(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(
        content=content(msgtype="actionCard", single_title="查看详情", single_url="https://example.com/o/1")
    )

    await channel.send(message, settings(base_url))

    assert robot.requests[0].json() == {
        "msgtype": "actionCard",
        "actionCard": {
            "title": "充值成功",
            "text": "### 充值成功\n您已成功充值 100.00 元。",
            "singleTitle": "查看详情",
            "singleURL": "https://example.com/o/1",
        },
    }


async def test_action_card_with_buttons(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    btns = [
        {"title": "同意", "action_url": "https://example.com/approve"},
        {"title": "拒绝", "action_url": "https://example.com/reject"},
    ]
    message = make_message(content=content(msgtype="actionCard", btns=btns, btn_orientation="1"))

    await channel.send(message, settings(base_url))

    card = robot.requests[0].json()["actionCard"]
    assert card["btnOrientation"] == "1"
    assert card["btns"] == [
        {"title": "同意", "actionURL": "https://example.com/approve"},
        {"title": "拒绝", "actionURL": "https://example.com/reject"},
    ]
    assert "singleURL" not in card


async def test_generic_title_and_body_content_is_accepted(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(), settings(base_url))

    assert robot.requests[0].json()["markdown"] == {"title": "充值成功", "text": "您已成功充值 100.00 元。"}


@pytest.mark.parametrize(
    ("reply", "error", "code", "retry_after"),
    [
        ({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, RetryableError, "130101", 600),
        ({"errcode": -1, "errmsg": "系统繁忙"}, RetryableError, "-1", None),
        ({"errcode": 310000, "errmsg": "sign not match, more: [...]"}, TerminalError, "310000", None),
        ({"errcode": 310000, "errmsg": "keywords not in content"}, TerminalError, "310000", None),
        ({"errcode": 300001, "errmsg": "token is not exist"}, TerminalError, "300001", None),
        ({"errcode": 400102, "errmsg": "robot stopped"}, TerminalError, "400102", None),
        ({"errcode": 40035, "errmsg": "缺少参数 json"}, TerminalError, "40035", None),
    ],
)
async def test_error_code_matrix(
    channel: DingTalkChannel,
    robot: FakeRobot,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
    reply: dict[str, Any],
    error: type[Exception],
    code: str,
    retry_after: float | None,
) -> None:
    robot.reply = reply

    with pytest.raises(error) as raised:
        await channel.send(make_message(content=content()), settings(base_url))

    assert raised.value.code == code  # type: ignore[attr-defined]
    assert reply["errmsg"] in raised.value.message  # type: ignore[attr-defined]
    if isinstance(raised.value, RetryableError):
        assert raised.value.retry_after == retry_after


async def test_an_errcode_on_a_4xx_answer_is_classified_by_the_errcode(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.status, robot.reply = 400, {"errcode": 130101, "errmsg": "send too fast"}

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(content=content()), settings(base_url))

    assert raised.value.code == "130101"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(
    channel: DingTalkChannel,
    robot: FakeRobot,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
) -> None:
    robot.status, robot.raw_body = status, b"<html>bad gateway</html>"

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(content=content()), settings(base_url))

    assert raised.value.code == str(status)


async def test_429_honours_retry_after(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.status, robot.headers = 429, [(b"retry-after", b"42")]

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(content=content()), settings(base_url))

    assert (raised.value.code, raised.value.retry_after) == ("429", 42)


async def test_a_200_that_is_not_a_dingtalk_answer_is_retryable(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.raw_body = b"<html>portal</html>"

    with pytest.raises(RetryableError):
        await channel.send(make_message(content=content()), settings(base_url))


@pytest.mark.parametrize("status", [404, 302])
async def test_other_http_answers_are_terminal_and_redirects_are_not_followed(
    channel: DingTalkChannel,
    robot: FakeRobot,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
) -> None:
    robot.status, robot.raw_body = status, b"not here"
    robot.headers = [(b"location", f"{base_url}/elsewhere".encode())]

    with pytest.raises(TerminalError) as raised:
        await channel.send(make_message(content=content()), settings(base_url))

    assert raised.value.code == str(status)
    assert len(robot.requests) == 1


async def test_nothing_listening_is_retryable(
    channel: DingTalkChannel, port_factory: Callable[[], int], make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError):
        await channel.send(make_message(content=content()), settings(f"http://127.0.0.1:{port_factory()}"))


async def test_slow_answer_times_out_as_retryable(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.delay = 1

    with pytest.raises(RetryableError, match="Timeout"):
        await channel.send(make_message(content=content()), settings(base_url, timeout=0.2))


async def test_a_rendered_template_that_does_not_fit_is_terminal(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="template"):
        await channel.send(make_message(content={"msgtype": "link", "text": "x"}), settings(base_url))

    assert robot.requests == []


async def test_aclose_then_send_again(
    channel: DingTalkChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(content=content()), settings(base_url))
    await channel.aclose()
    await channel.aclose()

    await channel.send(make_message(content=content()), settings(base_url))

    assert len(robot.requests) == 2


def test_sign_known_answer() -> None:
    secret, timestamp = "this is secret", 1577262236757
    expected = base64.b64encode(
        hmac.new(b"this is secret", b"1577262236757\nthis is secret", hashlib.sha256).digest()
    ).decode()

    assert sign(secret, timestamp) == expected
    assert sign(SECRET, timestamp) == documented_sign(SECRET, str(timestamp))
    assert sign(secret, timestamp + 1) != expected


@pytest.mark.parametrize(
    ("phone", "expected"),
    [("+8613800000000", "13800000000"), ("138 0000 0000", "13800000000"), ("+1-650-555-0100", "+16505550100")],
)
def test_local_mobile(phone: str, expected: str) -> None:
    assert local_mobile(phone) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"msgtype": "markdown", "text": "no title"},
        {"msgtype": "text", "text": ""},
        {"msgtype": "feedCard", "text": "x"},
        {"msgtype": "actionCard", "title": "t", "text": "x"},
        {"msgtype": "actionCard", "title": "t", "text": "x", "single_title": "only a title"},
        {
            "msgtype": "actionCard",
            "title": "t",
            "text": "x",
            "single_title": "a",
            "single_url": "https://e.com",
            "btns": [{"title": "b", "action_url": "https://e.com"}],
        },
        {"msgtype": "markdown", "title": "t", "text": "x", "single_url": "https://e.com"},
        {"msgtype": "markdown", "title": "t", "text": "x", "typo": 1},
    ],
)
def test_template_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DingTalkTemplate.model_validate(fields)


def test_template_accepts_var_placeholders() -> None:
    template = DingTalkTemplate.model_validate(
        {"msgtype": "markdown", "title": "充值 ${amount} 元", "text": "${user_name} 充值成功", "at_recipient": True}
    )

    assert template.title == "充值 ${amount} 元"


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "ftp://oapi.dingtalk.com"},
        {"base_url": "oapi.dingtalk.com"},
        {"access_token": " "},
        {"timeout": 0},
        {"webhook": "https://oapi.dingtalk.com/robot/send"},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DingTalkSettings.model_validate({"access_token": TOKEN, **overrides})


def test_settings_defaults_and_secret_masking() -> None:
    parsed = DingTalkSettings.model_validate({"access_token": TOKEN, "secret": SECRET})

    assert (parsed.base_url, parsed.timeout) == ("https://oapi.dingtalk.com", 10)
    dumped = parsed.model_dump_json()
    assert TOKEN not in dumped and SECRET not in dumped
    assert DingTalkSettings.secret_fields() == ["access_token", "secret"]
    assert "base_url" in json.dumps(DingTalkSettings.model_json_schema())
