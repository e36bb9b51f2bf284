"""WeChatMPChannel (subscribe messages) against the fake WeChat API on loopback.

The shared token logic is covered in test_wechat_oa.py; here: the subscribe-message request, the
mini-program settings, the error codes (43101 above all) and one token refresh through this channel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.wechat_mp import (
    QUOTA_EXHAUSTED_CODE,
    WeChatMPChannel,
    WeChatMPSettings,
    WeChatMPTemplate,
    subscription_template_id,
)
from herald.channels.wechat_oa import WeChatOAChannel
from herald.core.errors import RetryableError, SkipDelivery, TerminalError
from tests.channels.fake_wechat import (
    APP_ID,
    APP_SECRET,
    MP_SEND_PATH,
    TOKEN_PATH,
    DictCache,
    FakeWeChat,
    running_wechat,
)

OPENID = "oX1Ab5Kc_mP3qR8sT0uV2wY4zA6b"
TEMPLATE_ID = "Lx9PpPjQJ8mPsVZ8R0nQ7fXOlS3dHn4uUuJ1x6p3TnE"


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
async def channel() -> AsyncIterator[WeChatMPChannel]:
    chan = WeChatMPChannel()
    yield chan
    await chan.aclose()


@pytest.fixture
def mp_message(make_message: Callable[..., OutboundMessage]) -> Callable[..., OutboundMessage]:
    def make(openid: str | None = OPENID, **content: Any) -> OutboundMessage:
        channels = {"wechat_mp_openid": openid} if openid else {}
        fields = {"template_id": TEMPLATE_ID, "data": {"thing1": "会员充值", "amount2": "100.00元"}}
        return make_message(recipient=Recipient(id="u1", channels=channels), content={**fields, **content})

    return make


def settings(base_url: str, **overrides: Any) -> WeChatMPSettings:
    return WeChatMPSettings.model_validate(
        {"app_id": APP_ID, "app_secret": APP_SECRET, "base_url": base_url, **overrides}
    )


def test_registered_and_declares_the_quota() -> None:
    assert CHANNELS["wechat_mp"] is WeChatMPChannel
    assert WeChatMPChannel.Template is WeChatMPTemplate
    assert WeChatMPChannel.quota_exhausted_codes == frozenset({"43101"}) and QUOTA_EXHAUSTED_CODE == "43101"
    assert not WeChatOAChannel.quota_exhausted_codes
    assert WeChatMPSettings.secret_fields() == ["app_secret"]


def test_each_send_needs_a_grant_for_its_template(mp_message: Callable[..., OutboundMessage]) -> None:
    message = mp_message()
    assert WeChatMPChannel().quota_key(message) == f"wechat_mp:{message.content['template_id']}"
    assert WeChatOAChannel().quota_key(message) is None


async def test_subscribe_message(
    channel: WeChatMPChannel, wechat: FakeWeChat, base_url: str, mp_message: Callable[..., OutboundMessage]
) -> None:
    result = await channel.send(mp_message(page="pages/orders/detail?id=42"), settings(base_url))

    token_call, send = wechat.requests
    assert token_call.path == TOKEN_PATH
    assert token_call.json() == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": APP_SECRET,
        "force_refresh": False,
    }
    assert (send.method, send.path, send.query) == ("POST", MP_SEND_PATH, {"access_token": [wechat.current]})
    assert send.json() == {
        "touser": OPENID,
        "template_id": TEMPLATE_ID,
        "page": "pages/orders/detail?id=42",
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "data": {"thing1": {"value": "会员充值"}, "amount2": {"value": "100.00元"}},
    }
    assert result.provider_message_id == "2000000001"


async def test_state_lang_and_no_page(
    channel: WeChatMPChannel, wechat: FakeWeChat, base_url: str, mp_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(mp_message(page=""), settings(base_url, miniprogram_state="trial", lang="en_US"))

    body = wechat.sends[0].json()
    assert (body["miniprogram_state"], body["lang"]) == ("trial", "en_US")
    assert "page" not in body


async def test_token_shared_with_another_instance_and_refreshed_once_on_40001(
    wechat: FakeWeChat, base_url: str, mp_message: Callable[..., OutboundMessage]
) -> None:
    cache = DictCache()
    first, second = WeChatMPChannel(), WeChatMPChannel()
    first.bind(cache)
    second.bind(cache)
    try:
        await first.send(mp_message(), settings(base_url))
        wechat.revoke()
        await second.send(mp_message(), settings(base_url))
        await first.send(mp_message(), settings(base_url))
    finally:
        await first.aclose()
        await second.aclose()

    assert len(wechat.token_calls) == 2
    assert len(wechat.sends) == 4  # ok, 40001, retried ok, ok with the refreshed shared token
    assert wechat.sends[3].query == wechat.sends[2].query


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (43101, TerminalError),  # user refused / no subscription left
        (40003, TerminalError),  # invalid openid
        (40037, TerminalError),  # invalid template id
        (47003, TerminalError),  # template params invalid
        (41030, TerminalError),  # invalid page
        (-1, RetryableError),
        (45009, RetryableError),
        (45011, RetryableError),
    ],
)
async def test_send_error_matrix(
    channel: WeChatMPChannel,
    wechat: FakeWeChat,
    base_url: str,
    mp_message: Callable[..., OutboundMessage],
    code: int,
    error: type[Exception],
) -> None:
    wechat.send_replies.append((200, {"errcode": code, "errmsg": f"message for {code}"}))

    with pytest.raises(error) as raised:
        await channel.send(mp_message(), settings(base_url))

    assert raised.value.code == str(code)  # type: ignore[attr-defined]
    assert f"message for {code}" in raised.value.message  # type: ignore[attr-defined]
    assert len(wechat.sends) == 1


async def test_persistent_invalid_token_is_retryable(
    channel: WeChatMPChannel, wechat: FakeWeChat, base_url: str, mp_message: Callable[..., OutboundMessage]
) -> None:
    wechat.send_replies[:] = [(200, {"errcode": 40001, "errmsg": "invalid credential"})] * 3

    with pytest.raises(RetryableError) as raised:
        await channel.send(mp_message(), settings(base_url))

    assert raised.value.code == "40001"
    assert (len(wechat.token_calls), len(wechat.sends)) == (2, 2)


async def test_bad_secret_is_terminal(
    channel: WeChatMPChannel, wechat: FakeWeChat, base_url: str, mp_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError) as raised:
        await channel.send(mp_message(), settings(base_url, app_secret="wrong"))

    assert raised.value.code == "40125"
    assert wechat.sends == []


async def test_missing_openid_is_skipped(
    channel: WeChatMPChannel, wechat: FakeWeChat, base_url: str, mp_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(SkipDelivery, match="no WeChat mini-program openid"):
        await channel.send(mp_message(openid=None), settings(base_url))

    assert wechat.requests == []


async def test_the_oa_openid_is_not_used(
    channel: WeChatMPChannel, wechat: FakeWeChat, base_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(
        recipient=Recipient(id="u1", channels={"wechat_oa_openid": OPENID}),
        content={"template_id": TEMPLATE_ID, "data": {}},
    )

    with pytest.raises(SkipDelivery):
        await channel.send(message, settings(base_url))


def test_subscription_template_id() -> None:
    assert subscription_template_id({"template_id": TEMPLATE_ID, "data": {}}) == TEMPLATE_ID
    assert subscription_template_id({"data": {}}) is None
    assert subscription_template_id({"template_id": ""}) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"data": {"thing1": "x"}},
        {"template_id": "t", "data": {"thing-1": "x"}},
        {"template_id": "t", "data": ["x"]},
        {"template_id": "t", "miniprogram_state": "formal"},
    ],
)
def test_template_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WeChatMPTemplate.model_validate(fields)


@pytest.mark.parametrize(
    "overrides",
    [{"miniprogram_state": "production"}, {"lang": "fr_FR"}, {"app_id": ""}, {"base_url": "ftp://x"}],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WeChatMPSettings.model_validate({"app_id": APP_ID, "app_secret": APP_SECRET, **overrides})


def test_settings_defaults() -> None:
    parsed = WeChatMPSettings.model_validate({"app_id": APP_ID, "app_secret": APP_SECRET})

    assert (parsed.miniprogram_state, parsed.lang, parsed.base_url) == ("formal", "zh_CN", "https://api.weixin.qq.com")
