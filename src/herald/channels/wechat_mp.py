"""WeChat mini-program subscribe message (小程序订阅消息) to one user's openid.

Per WeChat's "发送订阅消息" (subscribeMessage.send): ``POST {base_url}/cgi-bin/message/subscribe/send?access_token=…``
with ``{"touser", "template_id", "page"?, "miniprogram_state", "lang", "data": {"thing1": {"value": "…"}}}``;
``{"errcode": 0, "msgid": …}`` on success.

A one-time subscription lets the app send one message per grant the user gave in the mini-program
(``wx.requestSubscribeMessage``). The business backend records the grants through the channel's own
route ``POST /v1/users/{user_id}/wechat-subscriptions`` (send key, idempotent); the engine consumes
one grant of ``quota_key`` before calling ``send`` and skips the delivery when none is left; 43101
("user refuse to accept the msg", no grant left on WeChat's side) is terminal here and the engine
zeroes the quota on that code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from herald.channels._wechat import (
    DAILY_QUOTA,
    MINUTE_QUOTA,
    SYSTEM_BUSY,
    WeChatAppSettings,
    WeChatChannel,
    keyword_data,
    parse_content,
    wrap_values,
)
from herald.channels.base import ChannelRequest, ChannelRoute, OutboundMessage, Recipient, SendResult
from herald.core.errors import SkipDelivery

SEND_PATH = "/cgi-bin/message/subscribe/send"
OPENID_KEY = "wechat_mp_openid"
NO_SUBSCRIPTION = 43101  # user refused / no one-time grant left: the engine zeroes its quota
INVALID_OPENID = 40003
INVALID_TEMPLATE_ID = 40037
INVALID_TEMPLATE_PARAMS = 47003  # a data value broke its keyword's rule (thing ≤ 20 chars, number, date, …)
QUOTA_EXHAUSTED_CODE = str(NO_SUBSCRIPTION)


class WeChatMPSettings(WeChatAppSettings):
    """The mini-program's AppID / AppSecret (小程序后台 → 开发 → 开发管理 → 开发设置)."""

    miniprogram_state: Literal["developer", "trial", "formal"] = Field(
        "formal", description="Which version the message opens: developer (开发版), trial (体验版) or formal (正式版)."
    )
    lang: Literal["zh_CN", "en_US", "zh_HK", "zh_TW"] = Field("zh_CN", description="Language of the message card.")


class WeChatMPTemplate(BaseModel):
    """The ``wechat_mp`` template of a notification type; every string may use ``${var}``."""

    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, description="Subscribe-message template ID (订阅消息 → 我的模板).")
    page: str | None = Field(None, description="Mini-program page opened on tap, with query (index?foo=${bar}).")
    data: dict[str, str] = Field(
        default_factory=dict, description='Keyword → value, e.g. {"thing1": "${product}", "time2": "${paid_at}"}.'
    )

    @field_validator("data", mode="before")
    @classmethod
    def _keywords(cls, value: Any) -> Any:
        return keyword_data(value)

    @field_validator("page")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None


class WechatSubscriptionIn(BaseModel):
    """Grants the mini-program reported (wx.requestSubscribeMessage answered "accept")."""

    model_config = ConfigDict(extra="forbid")
    template_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    count: int = Field(default=1, ge=1, le=1000)


def grant_key(template_id: str) -> str:
    """The user's grants for one subscribe-message template: recorded by the route, taken per send."""
    return f"{WeChatMPChannel.name}:{template_id}"


async def grant_wechat_subscriptions(request: ChannelRequest) -> dict[str, Any]:
    """Record one-time subscription grants for a mini-program template; each send consumes one."""
    body = request.body_as(WechatSubscriptionIn)
    left = await request.grants.grant(grant_key(body.template_id), body.count)
    return {"user_id": request.user_id, "template_id": body.template_id, "remaining": left}


class WeChatMPChannel(WeChatChannel):
    name = "wechat_mp"
    title = "WeChat mini-program / 微信小程序订阅消息"
    provider = "WeChat MP"
    Settings = WeChatMPSettings
    Template = WeChatMPTemplate
    retryable_codes = frozenset({SYSTEM_BUSY, DAILY_QUOTA, MINUTE_QUOTA})
    # Each send needs one of the user's one-time grants for the template (recorded through
    # POST /v1/users/{id}/wechat-subscriptions); 43101 means the user has none left.
    quota_exhausted_codes: ClassVar[frozenset[str]] = frozenset({QUOTA_EXHAUSTED_CODE})

    def routes(self) -> Sequence[ChannelRoute]:
        return (
            ChannelRoute(
                "POST",
                "/v1/users/{user_id}/wechat-subscriptions",
                grant_wechat_subscriptions,
                auth="send",
                body=WechatSubscriptionIn,
                status_code=201,
                summary="Record WeChat mini-program subscription grants",
                idempotent=True,
            ),
        )

    def quota_key(self, message: OutboundMessage) -> str | None:
        template_id = subscription_template_id(message.content)
        return grant_key(template_id) if template_id else None

    def missing_address(self, recipient: Recipient) -> str | None:
        return None if recipient.channels.get(OPENID_KEY) else "no WeChat mini-program openid"

    async def send(self, message: OutboundMessage, settings: WeChatMPSettings) -> SendResult:
        openid = message.recipient.channels.get(OPENID_KEY)
        if not openid:
            raise SkipDelivery("no WeChat mini-program openid")
        template: WeChatMPTemplate = parse_content(WeChatMPTemplate, message.content, self.name)
        return await self.call_with_token(settings, SEND_PATH, build_body(template, str(openid), settings))


def subscription_template_id(content: dict[str, Any]) -> str | None:
    """The template whose quota a delivery consumes, from its (rendered or stored) template."""
    value = content.get("template_id")
    return value if isinstance(value, str) and value else None


def build_body(template: WeChatMPTemplate, openid: str, settings: WeChatMPSettings) -> dict[str, Any]:
    body: dict[str, Any] = {"touser": openid, "template_id": template.template_id}
    if template.page:
        body["page"] = template.page
    body["miniprogram_state"] = settings.miniprogram_state
    body["lang"] = settings.lang
    body["data"] = wrap_values(template.data)
    return body
