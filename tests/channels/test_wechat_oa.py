"""WeChatOAChannel (and the shared access-token logic) against a fake WeChat API on loopback.

The fake (tests/channels/fake_wechat.py) applies WeChat's documented rules: stable_token's body and
normal-mode reuse, the send's ``access_token`` query checked against the current token (40001 /
42001), and the template-message body shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels._wechat import token_cache_key, token_cache_ttl
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.wechat_oa import WeChatOAChannel, WeChatOASettings, WeChatOATemplate
from herald.core.errors import RetryableError, SkipDelivery, TerminalError
from tests.channels.fake_wechat import (
    APP_ID,
    APP_SECRET,
    OA_SEND_PATH,
    TOKEN_PATH,
    DictCache,
    FakeWeChat,
    running_wechat,
)

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
TEMPLATE_ID = "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY"


@pytest.fixture(scope="module")
def wechat_server(port_factory: Callable[[], int]) -> Iterator[tuple[FakeWeChat, str]]:
    with running_wechat(port_factory()) as server:
        yield server


@pytest.fixture
def wechat(wechat_server: tuple[FakeWeChat, str]) -> FakeWeChat:
    wechat_server[0].reset()
    return wechat_server[0]


@pytest.fixture
def base_url(wechat_server: tuple[FakeWeChat, str]) -> str:
    return wechat_server[1]


@pytest.fixture
async def channel() -> AsyncIterator[WeChatOAChannel]:
    chan = WeChatOAChannel()
    yield chan
    await chan.aclose()


@pytest.fixture
def oa_message(make_message: Callable[..., OutboundMessage]) -> Callable[..., OutboundMessage]:
    def make(openid: str | None = OPENID, **content: Any) -> OutboundMessage:
        channels = {"wechat_oa_openid": openid} if openid else {}
        fields = {"template_id": TEMPLATE_ID, "data": {"thing1": "充值 100.00 元", "time2": "2026-11-27 14:30"}}
        return make_message(recipient=Recipient(id="u1", channels=channels), content={**fields, **content})

    return make


def settings(base_url: str, **overrides: Any) -> WeChatOASettings:
    return WeChatOASettings.model_validate(
        {"app_id": APP_ID, "app_secret": APP_SECRET, "base_url": base_url, **overrides}
    )


def test_registered() -> None:
    assert CHANNELS["wechat_oa"] is WeChatOAChannel
    assert WeChatOAChannel.Template is WeChatOATemplate
    assert WeChatOAChannel.requires_template
    assert WeChatOASettings.secret_fields() == ["app_secret"]


async def test_template_message(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    message = oa_message(url="https://example.com/orders/42")

    result = await channel.send(message, settings(base_url))

    token_call, send = wechat.requests
    assert (token_call.method, token_call.path, token_call.query) == ("POST", TOKEN_PATH, {})
    assert token_call.json() == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": APP_SECRET,
        "force_refresh": False,
    }
    assert (send.method, send.path) == ("POST", OA_SEND_PATH)
    assert send.query == {"access_token": [wechat.current]}
    assert send.json() == {
        "touser": OPENID,
        "template_id": TEMPLATE_ID,
        "url": "https://example.com/orders/42",
        "client_msg_id": message.delivery_id,
        "data": {"thing1": {"value": "充值 100.00 元"}, "time2": {"value": "2026-11-27 14:30"}},
    }
    assert "充值".encode() in send.body  # UTF-8, not \u escapes
    assert result.provider_message_id == "2000000001"


async def test_miniprogram_link_and_own_client_msg_id(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    message = oa_message(
        miniprogram={"appid": "wx9876543210fedcba", "pagepath": "pages/order?id=42"},
        client_msg_id="order-42-paid",
        url="",
        title="ignored generic field",
    )

    await channel.send(message, settings(base_url))

    body = wechat.sends[0].json()
    assert body["miniprogram"] == {"appid": "wx9876543210fedcba", "pagepath": "pages/order?id=42"}
    assert body["client_msg_id"] == "order-42-paid"
    assert "url" not in body


async def test_token_is_fetched_once_and_reused(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    for _ in range(3):
        await channel.send(oa_message(), settings(base_url))

    assert len(wechat.token_calls) == 1
    assert len(wechat.sends) == 3


async def test_concurrent_sends_fetch_one_token(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    await asyncio.gather(*(channel.send(oa_message(), settings(base_url)) for _ in range(5)))

    assert len(wechat.token_calls) == 1


async def test_two_instances_share_the_token_through_the_cache(
    wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    cache = DictCache()
    first, second = WeChatOAChannel(), WeChatOAChannel()
    first.bind(cache)
    second.bind(cache)
    try:
        await first.send(oa_message(), settings(base_url))
        await second.send(oa_message(), settings(base_url))
        await asyncio.gather(
            first.send(oa_message(), settings(base_url)), second.send(oa_message(), settings(base_url))
        )
    finally:
        await first.aclose()
        await second.aclose()

    assert len(wechat.token_calls) == 1
    assert len(wechat.sends) == 4
    assert await cache.get(f"wechat:token:{APP_ID}") == wechat.current
    assert cache.ttls[f"wechat:token:{APP_ID}"] == 7200 - 300
    assert await cache.get(f"wechat:token:{APP_ID}:refreshing") is None  # the refresh lock was released


async def test_a_process_waits_for_the_token_another_is_fetching(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    cache = DictCache()
    channel.bind(cache)
    key = token_cache_key(APP_ID)
    assert await cache.add(key + ":refreshing", "1", ttl_seconds=30)  # another process holds the lock
    token = wechat.issue()

    async def other_process_finishes() -> None:
        await asyncio.sleep(0.3)
        await cache.set(key, token, ttl_seconds=600)

    await asyncio.gather(other_process_finishes(), channel.send(oa_message(), settings(base_url)))

    assert wechat.token_calls == []
    assert wechat.sends[0].query["access_token"] == [token]


async def test_token_is_refreshed_when_its_ttl_passes(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    cache = DictCache()
    channel.bind(cache)
    wechat.expires_in = 2  # cached for 1 s (half its life when shorter than the margin)

    await channel.send(oa_message(), settings(base_url))
    assert cache.ttls[token_cache_key(APP_ID)] == 1
    await channel.send(oa_message(), settings(base_url))
    assert len(wechat.token_calls) == 1
    first_token = wechat.sends[0].query["access_token"]
    await asyncio.sleep(1.1)
    await asyncio.sleep(1.0)  # the fake's token has expired too: normal mode now issues a new one
    await channel.send(oa_message(), settings(base_url))

    assert len(wechat.token_calls) == 2
    assert wechat.sends[-1].query["access_token"] != first_token
    assert len(wechat.sends) == 3


def test_cache_ttl_keeps_a_safety_margin() -> None:
    assert token_cache_ttl(7200) == 6900
    assert token_cache_ttl(1000) == 700
    assert token_cache_ttl(400) == 200
    assert 0 < token_cache_ttl(0) < 0.01


@pytest.mark.parametrize("invalid", ["revoked", "expired"])
async def test_invalid_token_answer_refreshes_once_and_retries(
    channel: WeChatOAChannel,
    wechat: FakeWeChat,
    base_url: str,
    oa_message: Callable[..., OutboundMessage],
    invalid: str,
) -> None:
    await channel.send(oa_message(), settings(base_url))
    if invalid == "revoked":
        wechat.revoke()  # the next send answers 40001
    else:
        wechat.current_expires = 0  # the next send answers 42001, and stable_token issues a new one

    result = await channel.send(oa_message(), settings(base_url))

    assert result.provider_message_id is not None
    assert len(wechat.token_calls) == 2
    assert [r.path for r in wechat.requests] == [TOKEN_PATH, OA_SEND_PATH, OA_SEND_PATH, TOKEN_PATH, OA_SEND_PATH]
    assert wechat.sends[1].query != wechat.sends[2].query
    assert all(r.json()["force_refresh"] is False for r in wechat.token_calls)


@pytest.mark.parametrize("code", [40001, 40014, 42001])
async def test_a_second_invalid_token_answer_is_retryable_not_a_loop(
    channel: WeChatOAChannel,
    wechat: FakeWeChat,
    base_url: str,
    oa_message: Callable[..., OutboundMessage],
    code: int,
) -> None:
    reply = {"errcode": code, "errmsg": "invalid credential"}
    wechat.send_replies[:] = [(200, reply), (200, reply), (200, reply)]

    with pytest.raises(RetryableError) as raised:
        await channel.send(oa_message(), settings(base_url))

    assert raised.value.code == str(code)
    assert len(wechat.sends) == 2
    assert len(wechat.token_calls) == 2


async def test_a_refused_token_is_not_dropped_when_another_process_replaced_it(
    wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    cache = DictCache()
    chan = WeChatOAChannel()
    chan.bind(cache)
    await cache.set(token_cache_key(APP_ID), "NEWER", ttl_seconds=600)

    await chan.forget_token(APP_ID, "OLDER")

    assert await cache.get(token_cache_key(APP_ID)) == "NEWER"
    await chan.forget_token(APP_ID, "NEWER")
    assert await cache.get(token_cache_key(APP_ID)) is None


@pytest.mark.parametrize(
    ("code", "error", "retry_after"),
    [
        (43004, TerminalError, None),  # require subscribe
        (40003, TerminalError, None),  # invalid openid
        (40037, TerminalError, None),  # invalid template_id
        (47003, TerminalError, None),  # argument invalid (data)
        (48001, TerminalError, None),  # api unauthorized
        (99999, TerminalError, None),  # unknown: terminal, code kept
        (-1, RetryableError, None),  # system busy
        (45009, RetryableError, 3600),  # daily api quota
        (45011, RetryableError, 60),  # minute api quota
        (45047, RetryableError, None),
    ],
)
async def test_send_error_matrix(
    channel: WeChatOAChannel,
    wechat: FakeWeChat,
    base_url: str,
    oa_message: Callable[..., OutboundMessage],
    code: int,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    wechat.send_replies.append((200, {"errcode": code, "errmsg": f"message for {code}"}))

    with pytest.raises(error) as raised:
        await channel.send(oa_message(), settings(base_url))

    assert raised.value.code == str(code)  # type: ignore[attr-defined]
    assert f"message for {code}" in raised.value.message  # type: ignore[attr-defined]
    if isinstance(raised.value, RetryableError):
        assert raised.value.retry_after == retry_after
    assert len(wechat.sends) == 1


@pytest.mark.parametrize(
    ("overrides", "scripted", "error", "code"),
    [
        ({"app_id": "wxffffffffffffffff"}, None, TerminalError, "40013"),
        ({"app_secret": "wrong"}, None, TerminalError, "40125"),
        ({}, (200, {"errcode": 40164, "errmsg": "invalid ip 203.0.113.9, not in whitelist"}), TerminalError, "40164"),
        ({}, (200, {"errcode": -1, "errmsg": "system error"}), RetryableError, "-1"),
        ({}, (200, {"errcode": 45009, "errmsg": "reach max api daily quota limit"}), RetryableError, "45009"),
        ({}, (503, {"errcode": -1, "errmsg": "unavailable"}), RetryableError, "503"),
        ({}, (200, {"expires_in": 7200}), RetryableError, None),
    ],
)
async def test_token_error_matrix(
    channel: WeChatOAChannel,
    wechat: FakeWeChat,
    base_url: str,
    oa_message: Callable[..., OutboundMessage],
    overrides: dict[str, Any],
    scripted: tuple[int, Any] | None,
    error: type[Exception],
    code: str | None,
) -> None:
    cache = DictCache()
    channel.bind(cache)
    if scripted is not None:
        wechat.token_replies.append(scripted)

    with pytest.raises(error) as raised:
        await channel.send(oa_message(), settings(base_url, **overrides))

    assert raised.value.code == code  # type: ignore[attr-defined]
    assert wechat.sends == []
    assert cache.values == {}  # nothing cached, the refresh lock released
    assert APP_SECRET not in str(raised.value)


async def test_the_token_error_message_keeps_wechats_words(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    wechat.token_replies.append((200, {"errcode": 40164, "errmsg": "invalid ip 203.0.113.9, not in whitelist"}))

    with pytest.raises(TerminalError, match=r"203\.0\.113\.9"):
        await channel.send(oa_message(), settings(base_url))


async def test_server_errors_and_garbage_on_send_are_retryable(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    wechat.send_replies.append((502, {"errcode": -1}))
    with pytest.raises(RetryableError) as raised:
        await channel.send(oa_message(), settings(base_url))
    assert raised.value.code == "502"

    wechat.raw_send_body = b"<html>portal</html>"
    with pytest.raises(RetryableError):
        await channel.send(oa_message(), settings(base_url))


async def test_other_http_answers_are_terminal(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    wechat.send_replies.append((404, "not here"))
    wechat.raw_send_body = b"not here"

    with pytest.raises(TerminalError) as raised:
        await channel.send(oa_message(), settings(base_url))

    assert raised.value.code == "404"


async def test_nothing_listening_is_retryable(
    channel: WeChatOAChannel, port_factory: Callable[[], int], oa_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError):
        await channel.send(oa_message(), settings(f"http://127.0.0.1:{port_factory()}"))


async def test_missing_openid_is_skipped_without_a_request(
    channel: WeChatOAChannel, wechat: FakeWeChat, base_url: str, oa_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(SkipDelivery, match="no WeChat official-account openid"):
        await channel.send(oa_message(openid=None), settings(base_url))

    assert wechat.requests == []


async def test_a_rendered_template_that_does_not_fit_is_terminal(
    channel: WeChatOAChannel,
    wechat: FakeWeChat,
    base_url: str,
    make_message: Callable[..., OutboundMessage],
) -> None:
    message = make_message(recipient=Recipient(id="u1", channels={"wechat_oa_openid": OPENID}))  # no template_id

    with pytest.raises(TerminalError, match="template"):
        await channel.send(message, settings(base_url))

    assert wechat.requests == []


@pytest.mark.parametrize(
    "fields",
    [
        {"data": {"thing1": "x"}},
        {"template_id": "", "data": {}},
        {"template_id": "t", "data": {"bad key": "x"}},
        {"template_id": "t", "data": {"thing1": {"value": "x"}}},
        {"template_id": "t", "miniprogram": {"pagepath": "index"}},
        {"template_id": "t", "color": "#FF0000"},
    ],
)
def test_template_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WeChatOATemplate.model_validate(fields)


def test_template_accepts_var_placeholders_and_stringifies_numbers() -> None:
    template = WeChatOATemplate.model_validate(
        {"template_id": "t", "url": "https://e.com/${id}", "data": {"amount3": 100, "thing1": "${product}"}}
    )

    assert template.data == {"amount3": "100", "thing1": "${product}"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"app_id": " "},
        {"app_secret": ""},
        {"base_url": "api.weixin.qq.com"},
        {"timeout": 0},
        {"token": "abc"},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WeChatOASettings.model_validate({"app_id": APP_ID, "app_secret": APP_SECRET, **overrides})


def test_settings_defaults_and_secret_masking() -> None:
    parsed = WeChatOASettings.model_validate({"app_id": APP_ID, "app_secret": APP_SECRET})

    assert (parsed.base_url, parsed.timeout) == ("https://api.weixin.qq.com", 10)
    assert APP_SECRET not in parsed.model_dump_json()
    assert "app_secret" in json.dumps(WeChatOASettings.model_json_schema())
