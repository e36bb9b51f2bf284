"""WeChat official account template message (公众号模板消息) to one follower's openid.

Per WeChat's "模板消息接口" (sendTemplateMessage): ``POST {base_url}/cgi-bin/message/template/send?access_token=…``
with ``{"touser", "template_id", "url"?, "miniprogram"? {"appid", "pagepath"}, "client_msg_id"?, "data":
{"keyword": {"value": "…"}}}``; ``{"errcode": 0, "msgid": …}`` on success. ``client_msg_id`` makes WeChat
drop a repeat of the same (openid, id) within 10 minutes, so a retried delivery is not sent twice.
The access token comes from ``_wechat`` (stable_token, shared cache, one refresh on 40001/40014/42001).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
from herald.channels.base import OutboundMessage, Recipient, SendResult
from herald.core.errors import SkipDelivery

SEND_PATH = "/cgi-bin/message/template/send"
OPENID_KEY = "wechat_oa_openid"
OUT_OF_QUOTA = 45047  # listed retryable by the platform's limits: try again later
NOT_SUBSCRIBED = 43004  # require subscribe: the user does not follow the account (any more)
INVALID_OPENID = 40003
INVALID_TEMPLATE_ID = 40037


class WeChatOASettings(WeChatAppSettings):
    """The official account's AppID / AppSecret (公众号 → 设置与开发 → 基本配置)."""


class MiniProgramLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appid: str = Field(min_length=1, description="AppID of a mini-program linked to the official account.")
    pagepath: str | None = Field(None, description="Page to open, with query (e.g. pages/order?id=${order_id}).")


class WeChatOATemplate(BaseModel):
    """The ``wechat_oa`` template of a notification type; every string may use ``${var}``."""

    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, description="Template ID from the account's template library (模板库).")
    url: str | None = Field(None, description="Page opened when the message is tapped.")
    miniprogram: MiniProgramLink | None = Field(None, description="Open a mini-program instead (takes precedence).")
    data: dict[str, str] = Field(
        default_factory=dict, description='Keyword → value, e.g. {"thing1": "${product}", "amount2": "${amount}"}.'
    )
    client_msg_id: str | None = Field(None, description="Dedup id; defaults to the delivery id.")

    @field_validator("data", mode="before")
    @classmethod
    def _keywords(cls, value: Any) -> Any:
        return keyword_data(value)

    @field_validator("url", "client_msg_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None


class WeChatOAChannel(WeChatChannel):
    name = "wechat_oa"
    title = "WeChat official account / 微信公众号模板消息"
    provider = "WeChat OA"
    Settings = WeChatOASettings
    Template = WeChatOATemplate
    retryable_codes = frozenset({SYSTEM_BUSY, DAILY_QUOTA, MINUTE_QUOTA, OUT_OF_QUOTA})

    def missing_address(self, recipient: Recipient) -> str | None:
        return None if recipient.channels.get(OPENID_KEY) else "no WeChat official-account openid"

    async def send(self, message: OutboundMessage, settings: WeChatOASettings) -> SendResult:
        openid = message.recipient.channels.get(OPENID_KEY)
        if not openid:
            raise SkipDelivery("no WeChat official-account openid")
        template: WeChatOATemplate = parse_content(WeChatOATemplate, message.content, self.name)
        return await self.call_with_token(settings, SEND_PATH, build_body(template, str(openid), message.delivery_id))


def build_body(template: WeChatOATemplate, openid: str, delivery_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"touser": openid, "template_id": template.template_id}
    if template.url:
        body["url"] = template.url
    if template.miniprogram is not None:
        link: dict[str, str] = {"appid": template.miniprogram.appid}
        if template.miniprogram.pagepath:
            link["pagepath"] = template.miniprogram.pagepath
        body["miniprogram"] = link
    body["client_msg_id"] = template.client_msg_id or delivery_id
    body["data"] = wrap_values(template.data)
    return body
