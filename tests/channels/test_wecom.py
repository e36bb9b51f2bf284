"""WeComChannel against a fake group-robot API (uvicorn on loopback), checked against WeCom's documented format."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, RateLimit, Recipient
from herald.channels.wecom import WeComChannel, WeComSettings, WeComTemplate
from herald.core.errors import RetryableError, TerminalError
from tests.channels.fakes_robots import FakeRobot, running_robot

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
OK = {"errcode": 0, "errmsg": "ok"}


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
async def channel() -> AsyncIterator[WeComChannel]:
    chan = WeComChannel()
    yield chan
    await chan.aclose()


def settings(base_url: str, **overrides: Any) -> WeComSettings:
    return WeComSettings.model_validate({"key": KEY, "base_url": base_url, **overrides})


def test_registered_with_its_limits() -> None:
    assert CHANNELS["wecom"] is WeComChannel
    assert WeComChannel.rate_limit == RateLimit(20, 60)
    assert WeComChannel.Template is WeComTemplate


async def test_markdown_message(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(content={"msgtype": "markdown", "content": '充值 <font color="info">100.00</font> 元'})

    result = await channel.send(message, settings(base_url))

    assert result.detail == "ok"
    [request] = robot.requests
    assert (request.method, request.path) == ("POST", "/cgi-bin/webhook/send")
    assert request.query == {"key": KEY}
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == {
        "msgtype": "markdown",
        "markdown": {"content": '充值 <font color="info">100.00</font> 元'},
    }
    assert "充值".encode() in request.body


async def test_text_mentions_the_recipient_by_mobile_and_user_id(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    recipient = Recipient(id="u1", phone="+8613800001111", channels={"wecom_userid": "wangqing"})
    message = make_message(
        recipient=recipient, content={"msgtype": "text", "content": "广州今日天气：29度", "at_recipient": True}
    )

    await channel.send(message, settings(base_url))

    assert robot.requests[0].json() == {
        "msgtype": "text",
        "text": {
            "content": "广州今日天气：29度",
            "mentioned_list": ["wangqing"],
            "mentioned_mobile_list": ["13800001111"],
        },
    }


async def test_text_at_all_without_at_recipient(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(
        make_message(content={"msgtype": "text", "text": "停机通知", "at_all": True}), settings(base_url)
    )

    assert robot.requests[0].json() == {"msgtype": "text", "text": {"content": "停机通知", "mentioned_list": ["@all"]}}


async def test_markdown_mentions_by_user_id_tag(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    recipient = Recipient(id="u1", phone="+8613800001111", channels={"wecom_userid": "wangqing"})
    message = make_message(recipient=recipient, content={"content": "**待审批**", "at_recipient": True})

    await channel.send(message, settings(base_url))

    assert robot.requests[0].json() == {"msgtype": "markdown", "markdown": {"content": "**待审批**\n<@wangqing>"}}


async def test_news_articles(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    articles = [
        {
            "title": "中秋节礼品领取",
            "description": "今年中秋节公司有豪礼相送",
            "url": "https://www.qq.com",
            "picurl": "https://res.mail.qq.com/node/ww/wwopenmng/images/independent/doc/test_pic_msg1.png",
        },
        {"title": "第二篇", "url": "https://example.com/2"},
    ]

    await channel.send(make_message(content={"msgtype": "news", "articles": articles}), settings(base_url))

    assert robot.requests[0].json() == {"msgtype": "news", "news": {"articles": articles}}


async def test_generic_title_and_body_become_markdown(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(), settings(base_url))

    assert robot.requests[0].json() == {
        "msgtype": "markdown",
        "markdown": {"content": "**充值成功**\n您已成功充值 100.00 元。"},
    }


@pytest.mark.parametrize(
    ("reply", "error", "code", "retry_after"),
    [
        ({"errcode": 45009, "errmsg": "api freq out of limit"}, RetryableError, "45009", 60),
        ({"errcode": -1, "errmsg": "system busy"}, RetryableError, "-1", None),
        ({"errcode": 93000, "errmsg": "invalid webhook url"}, TerminalError, "93000", None),
        ({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}, TerminalError, "40058", None),
        ({"errcode": 40008, "errmsg": "invalid message type"}, TerminalError, "40008", None),
        ({"errcode": 44004, "errmsg": "text content is empty"}, TerminalError, "44004", None),
    ],
)
async def test_error_code_matrix(
    channel: WeComChannel,
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
        await channel.send(make_message(), settings(base_url))

    assert raised.value.code == code  # type: ignore[attr-defined]
    assert reply["errmsg"] in raised.value.message  # type: ignore[attr-defined]
    if isinstance(raised.value, RetryableError):
        assert raised.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"), [(500, [], None), (503, [], None), (429, [(b"retry-after", b"9")], 9)]
)
async def test_http_throttling_and_server_errors_are_retryable(
    channel: WeComChannel,
    robot: FakeRobot,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
    status: int,
    headers: list[tuple[bytes, bytes]],
    retry_after: float | None,
) -> None:
    robot.status, robot.headers, robot.raw_body = status, headers, b"busy"

    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(base_url))

    assert (raised.value.code, raised.value.retry_after) == (str(status), retry_after)


async def test_redirects_are_not_followed(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.status, robot.raw_body, robot.headers = 301, b"", [(b"location", f"{base_url}/x".encode())]

    with pytest.raises(TerminalError) as raised:
        await channel.send(make_message(), settings(base_url))

    assert raised.value.code == "301"
    assert len(robot.requests) == 1


async def test_nothing_listening_is_retryable(
    channel: WeComChannel, port_factory: Callable[[], int], make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError):
        await channel.send(make_message(), settings(f"http://127.0.0.1:{port_factory()}"))


async def test_slow_answer_times_out_as_retryable(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    robot.delay = 1

    with pytest.raises(RetryableError, match="Timeout"):
        await channel.send(make_message(), settings(base_url, timeout=0.2))


async def test_a_rendered_template_that_does_not_fit_is_terminal(
    channel: WeComChannel, robot: FakeRobot, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="template"):
        await channel.send(make_message(content={"msgtype": "news", "articles": []}), settings(base_url))

    assert robot.requests == []


@pytest.mark.parametrize(
    "fields",
    [
        {"msgtype": "text"},
        {"msgtype": "markdown", "content": ""},
        {"msgtype": "news", "articles": []},
        {"msgtype": "news", "articles": [{"title": "t", "url": "u"}] * 9},
        {"msgtype": "news", "content": "x", "articles": [{"title": "t", "url": "u"}]},
        {"msgtype": "text", "content": "x", "articles": [{"title": "t", "url": "u"}]},
        {"msgtype": "image", "content": "x"},
        {"msgtype": "text", "content": "x", "mentioned": ["a"]},
    ],
)
def test_template_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WeComTemplate.model_validate(fields)


@pytest.mark.parametrize(
    "overrides", [{"base_url": "file:///etc/passwd"}, {"key": ""}, {"timeout": -1}, {"secret": "x"}]
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WeComSettings.model_validate({"key": KEY, **overrides})


def test_settings_defaults_and_secret_masking() -> None:
    parsed = WeComSettings.model_validate({"key": KEY})

    assert (parsed.base_url, parsed.timeout) == ("https://qyapi.weixin.qq.com", 10)
    assert KEY not in parsed.model_dump_json()
    assert WeComSettings.secret_fields() == ["key"]
    assert "key" in json.dumps(WeComSettings.model_json_schema())
