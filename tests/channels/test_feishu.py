"""FeishuChannel against a fake custom-bot API (uvicorn on loopback).

The fake records requests; the tests recompute the signature from Feishu's documented algorithm
(HMAC-SHA256 keyed by "{timestamp}\\n{secret}" over an empty message, base64), never with herald's ``sign``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, RateLimit, Recipient
from herald.channels.feishu import FeishuChannel, FeishuSettings, FeishuTemplate, sign
from herald.core.errors import RetryableError, TerminalError
from tests.channels.fakes_robots import FakeRobot, running_robot

HOOK = "2f7e3c1a-8b4d-4e6f-9a0b-1c2d3e4f5a6b"
SECRET = "demo-secret-Kq8n2Vx"
OK = {"code": 0, "msg": "success", "data": {}}


def documented_sign(timestamp: str, secret: str) -> str:
    """Feishu's published Python sample: the string to sign is the HMAC key, the message is empty."""
    key_enc = f"{timestamp}\n{secret}".encode()
    hmac_code = hmac.new(key_enc, b"", digestmod=hashlib.sha256).digest()
    return base64.b64encode(hmac_code).decode("utf-8")


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
async def channel() -> AsyncIterator[FeishuChannel]:
    chan = FeishuChannel()
    yield chan
    await chan.aclose()


def settings(base_url: str, **overrides: Any) -> FeishuSettings:
    return FeishuSettings.model_validate({"hook_token": HOOK, "secret": SECRET, "base_url": base_url, **overrides})


def test_registered_with_its_limits() -> None:
    assert CHANNELS["feishu"] is FeishuChannel
    assert FeishuChannel.rate_limit == RateLimit(100, 60)
    assert FeishuChannel.Template is FeishuTemplate


async def test_signed_text_message(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    before = int(time.time())

    result = await channel.send(make_message(content={"msg_type": "text", "text": "充值成功"}), settings(base_url))

    assert result.detail == "success"
    [request] = robot.requests
    assert (request.method, request.path, request.raw_query) == ("POST", f"/open-apis/bot/v2/hook/{HOOK}", "")
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert isinstance(body["timestamp"], str)  # seconds, as a string
    assert before <= int(body["timestamp"]) <= int(time.time())
    assert body["sign"] == documented_sign(body["timestamp"], SECRET)
    assert body == {
        "timestamp": body["timestamp"],
        "sign": body["sign"],
        "msg_type": "text",
        "content": {"text": "充值成功"},
    }


async def test_without_a_secret_there_is_no_timestamp_or_sign(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(), settings(base_url, secret=None))

    assert robot.requests[0].json() == {"msg_type": "text", "content": {"text": "您已成功充值 100.00 元。"}}


async def test_text_at_the_recipient_and_all(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    recipient = Recipient(id="u1", name="Tom", channels={"feishu_user_id": "ou_7d8a6e6df7621556ce0d21922b676706ccs"})
    content = {"text": "请审批", "at_recipient": True, "at_all": True}

    await channel.send(make_message(recipient=recipient, content=content), settings(base_url, secret=None))

    assert robot.requests[0].json()["content"] == {
        "text": '请审批 <at user_id="ou_7d8a6e6df7621556ce0d21922b676706ccs">Tom</at> <at user_id="all">所有人</at>'
    }


async def test_post_from_title_and_text_lines(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    recipient = Recipient(id="u1", channels={"feishu_user_id": "ou_1"})
    content = {"msg_type": "post", "title": "项目更新通知", "text": "第一行\n第二行", "at_recipient": True}

    await channel.send(make_message(recipient=recipient, content=content), settings(base_url))

    body = robot.requests[0].json()
    assert body["msg_type"] == "post"
    assert body["content"] == {
        "post": {
            "zh_cn": {
                "title": "项目更新通知",
                "content": [
                    [{"tag": "text", "text": "第一行"}],
                    [{"tag": "text", "text": "第二行"}],
                    [{"tag": "at", "user_id": "ou_1"}],
                ],
            }
        }
    }


async def test_post_with_full_rich_text(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    post = {
        "zh_cn": {
            "title": "项目更新通知",
            "content": [
                [
                    {"tag": "text", "text": "项目有更新: "},
                    {"tag": "a", "text": "请查看", "href": "http://www.example.com/"},
                ]
            ],
        }
    }

    await channel.send(make_message(content={"msg_type": "post", "post": post}), settings(base_url))

    assert robot.requests[0].json()["content"] == {"post": post}


async def test_interactive_card_goes_in_card(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    card = {
        "header": {"title": {"tag": "plain_text", "content": "充值成功"}, "template": "blue"},
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**金额** 100.00 元"}}],
    }

    await channel.send(make_message(content={"msg_type": "interactive", "card": card}), settings(base_url))

    body = robot.requests[0].json()
    assert body["msg_type"] == "interactive"
    assert body["card"] == card
    assert "content" not in body
    assert body["sign"] == documented_sign(body["timestamp"], SECRET)


async def test_older_status_code_answer_is_understood(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.reply = {"Extra": None, "StatusCode": 0, "StatusMessage": "success"}

    result = await channel.send(make_message(), settings(base_url))

    assert result.detail == "success"


@pytest.mark.parametrize(
    ("status", "reply", "error", "code"),
    [
        (
            200,
            {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"},
            TerminalError,
            "19021",
        ),
        (400, {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"}, RetryableError, "11232"),
        (200, {"code": 9499, "msg": "too many request"}, RetryableError, "9499"),
        (400, {"code": 9499, "msg": "Bad Request", "data": {}}, TerminalError, "9499"),
        (200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}, TerminalError, "19001"),
        (200, {"code": 19024, "msg": "Key Words Not Found"}, TerminalError, "19024"),
        (200, {"StatusCode": 19021, "StatusMessage": "sign match fail"}, TerminalError, "19021"),
    ],
)
async def test_error_code_matrix(
    channel: FeishuChannel,
    robot: FakeRobot,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
    reply: dict[str, Any],
    error: type[Exception],
    code: str,
) -> None:
    robot.status, robot.reply = status, reply

    with pytest.raises(error) as raised:
        await channel.send(make_message(), settings(base_url))

    assert raised.value.code == code  # type: ignore[attr-defined]
    if isinstance(raised.value, RetryableError):
        assert raised.value.retry_after == 60


@pytest.mark.parametrize(("status", "headers", "retry_after"), [(502, [], None), (429, [(b"retry-after", b"3")], 3)])
async def test_http_throttling_and_server_errors_are_retryable(
    channel: FeishuChannel,
    robot: FakeRobot,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
    headers: list[tuple[bytes, bytes]],
    retry_after: float | None,
) -> None:
    robot.status, robot.headers, robot.raw_body = status, headers, b"upstream"

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(base_url))

    assert (raised.value.code, raised.value.retry_after) == (str(status), retry_after)


async def test_a_404_page_is_terminal(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.status, robot.raw_body = 404, b"404 page not found"

    with pytest.raises(TerminalError) as raised:
        await channel.send(make_message(), settings(base_url))

    assert raised.value.code == "404"


async def test_nothing_listening_is_retryable(
    channel: FeishuChannel, port_factory: Callable[[], int], make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError):
        await channel.send(make_message(), settings(f"http://127.0.0.1:{port_factory()}"))


async def test_a_rendered_template_that_does_not_fit_is_terminal(
    channel: FeishuChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="template"):
        await channel.send(make_message(content={"msg_type": "interactive"}), settings(base_url))

    assert robot.requests == []


def test_sign_known_answer() -> None:
    timestamp = 1599360473
    expected = base64.b64encode(hmac.new(b"1599360473\ndemo-secret-Kq8n2Vx", b"", hashlib.sha256).digest()).decode()

    assert sign(SECRET, timestamp) == expected
    assert sign(SECRET, timestamp) == documented_sign(str(timestamp), SECRET)
    # Not DingTalk's scheme (key=secret, msg="{ts}\n{secret}"), which a copy-paste would produce.
    dingtalk_style = hmac.new(SECRET.encode(), b"1599360473\ndemo-secret-Kq8n2Vx", hashlib.sha256).digest()
    assert sign(SECRET, timestamp) != base64.b64encode(dingtalk_style).decode()


@pytest.mark.parametrize(
    "fields",
    [
        {"msg_type": "text"},
        {"msg_type": "post"},
        {"msg_type": "interactive"},
        {"msg_type": "text", "text": "x", "card": {"elements": []}},
        {"msg_type": "text", "text": "x", "post": {"zh_cn": {}}},
        {"msg_type": "image", "text": "x"},
        {"msg_type": "text", "text": "x", "extra": 1},
    ],
)
def test_template_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeishuTemplate.model_validate(fields)


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "ws://open.feishu.cn"},
        {"hook_token": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"},
        {"hook_token": ""},
        {"timeout": 500},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeishuSettings.model_validate({"hook_token": HOOK, **overrides})


def test_settings_defaults_and_secret_masking() -> None:
    parsed = FeishuSettings.model_validate({"hook_token": HOOK, "secret": SECRET})

    assert (parsed.base_url, parsed.timeout) == ("https://open.feishu.cn", 10)
    dumped = parsed.model_dump_json()
    assert HOOK not in dumped and SECRET not in dumped
    assert FeishuSettings.secret_fields() == ["hook_token", "secret"]
