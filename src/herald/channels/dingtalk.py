"""DingTalk custom robot (钉钉自定义机器人): a JSON POST to a group's webhook, optionally signed (加签).

Request format, signing and limits per DingTalk's "自定义机器人接入" and "自定义机器人安全设置" pages:
``timestamp`` is Unix milliseconds, ``sign`` is base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")),
both sent in the query string (URL-encoded); at most 20 messages a minute per robot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from herald.channels._http import HttpChannel, http_base_url, provider_answer
from herald.channels.base import ChannelSettings, OutboundMessage, RateLimit, Recipient, SendResult
from herald.core.errors import RetryableError, TerminalError

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://oapi.dingtalk.com"
SEND_PATH = "/robot/send"
# DingTalk: "每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟" — retrying sooner only
# meets the same block, so a throttled delivery waits out the whole penalty.
THROTTLED_RETRY_SECONDS = 600.0
THROTTLED = 130101  # send too fast, exceed 20 times per minute
SYSTEM_BUSY = -1  # global code: 系统繁忙, try again later
USERID_KEY = "dingtalk_userid"


def sign(secret: str, timestamp_ms: int) -> str:
    """The 加签 signature, before URL encoding: base64 HMAC-SHA256 of ``"{timestamp}\\n{secret}"``, key ``secret``."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkSettings(ChannelSettings):
    access_token: SecretStr = Field(
        description="The access_token from the robot's webhook URL (https://oapi.dingtalk.com/robot/send?access_token=…)."
    )
    secret: SecretStr | None = Field(
        None, description='The 加签 secret ("SEC…") when the robot\'s security setting uses signing; write-only.'
    )
    base_url: str = Field(DEFAULT_BASE_URL, description="API origin; change only to point at a test fake or proxy.")
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for the whole request.")

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("access_token")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("access_token must not be empty")
        return value


class DingTalkButton(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, description="Button label.")
    action_url: str = Field(min_length=1, description="URL opened by the button.")


class DingTalkTemplate(BaseModel):
    """The ``dingtalk`` template of a notification type; every string may use ``${var}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    msgtype: Literal["text", "markdown", "actionCard"] = Field("markdown", description="DingTalk message type.")
    title: str = Field("", description="Conversation-list title (markdown and actionCard; not shown in text).")
    text: str = Field(
        min_length=1,
        validation_alias=AliasChoices("text", "body"),
        description="Message text: plain for text, DingTalk markdown for markdown and actionCard.",
    )
    single_title: str | None = Field(None, description="actionCard: label of the single whole-card button.")
    single_url: str | None = Field(None, description="actionCard: URL of the single whole-card button.")
    btns: list[DingTalkButton] = Field(default_factory=list, description="actionCard: independent buttons.")
    btn_orientation: Literal["0", "1"] = Field("0", description='actionCard buttons: "0" vertical, "1" horizontal.')
    at_recipient: bool = Field(False, description="@ the recipient (phone, and user id from channels.dingtalk_userid).")
    at_all: bool = Field(False, description="@ everyone in the group (isAtAll).")

    @model_validator(mode="after")
    def _shape_fits_msgtype(self) -> DingTalkTemplate:
        if self.msgtype in ("markdown", "actionCard") and not self.title:
            raise ValueError(f"{self.msgtype} needs a title")
        single = self.single_title is not None or self.single_url is not None
        if self.msgtype == "actionCard":
            if single and not (self.single_title and self.single_url):
                raise ValueError("single_title and single_url go together")
            if single == bool(self.btns):
                raise ValueError("actionCard needs either single_title/single_url or btns")
        elif single or self.btns:
            raise ValueError("single_title, single_url and btns are for actionCard only")
        return self


class DingTalkChannel(HttpChannel):
    name = "dingtalk"
    title = "DingTalk robot / 钉钉机器人"
    Settings = DingTalkSettings
    Template = DingTalkTemplate
    rate_limit = RateLimit(20, 60)

    async def send(self, message: OutboundMessage, settings: DingTalkSettings) -> SendResult:
        template = parse_template(message.content)
        body = build_body(template, message.recipient)
        params = query_params(settings, int(time.time() * 1000))
        response = await self.post_json(settings.base_url + SEND_PATH, body, timeout=settings.timeout, params=params)
        return classify_response(response)


def parse_template(content: dict[str, Any]) -> DingTalkTemplate:
    """The rendered template as a model; a template that no longer fits the model can never send."""
    known = {k: v for k, v in content.items() if k in DingTalkTemplate.model_fields or k == "body"}
    try:
        return DingTalkTemplate.model_validate(known)
    except ValidationError as exc:
        raise TerminalError(f"dingtalk template is invalid: {_first_error(exc)}") from exc


def query_params(settings: DingTalkSettings, timestamp_ms: int) -> dict[str, str]:
    params = {"access_token": settings.access_token.get_secret_value()}
    if settings.secret is not None:
        params["timestamp"] = str(timestamp_ms)
        # httpx percent-encodes the value once, which is the urlEncode step of the algorithm.
        params["sign"] = sign(settings.secret.get_secret_value(), timestamp_ms)
    return params


def build_body(template: DingTalkTemplate, recipient: Recipient) -> dict[str, Any]:
    mobiles, user_ids = _mentions(template, recipient)
    if template.msgtype == "actionCard":
        card: dict[str, Any] = {"title": template.title, "text": template.text}
        if template.btns:
            card["btnOrientation"] = template.btn_orientation
            card["btns"] = [{"title": b.title, "actionURL": b.action_url} for b in template.btns]
        else:
            card["singleTitle"] = template.single_title
            card["singleURL"] = template.single_url
        # DingTalk's @ works in text and markdown messages only.
        return {"msgtype": "actionCard", "actionCard": card}
    # The @ only highlights someone whose "@mobile" / "@userid" also appears in the text.
    text = template.text
    tags = [f"@{m}" for m in mobiles + user_ids if f"@{m}" not in text]
    if tags:
        text += (" " if template.msgtype == "text" else "\n\n") + " ".join(tags)
    at = {"atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": template.at_all}
    if template.msgtype == "text":
        return {"msgtype": "text", "text": {"content": text}, "at": at}
    return {"msgtype": "markdown", "markdown": {"title": template.title, "text": text}, "at": at}


def _mentions(template: DingTalkTemplate, recipient: Recipient) -> tuple[list[str], list[str]]:
    if not template.at_recipient:
        return [], []
    mobiles = [local_mobile(recipient.phone)] if recipient.phone else []
    user_id = recipient.channels.get(USERID_KEY)
    return mobiles, [str(user_id)] if user_id else []


def local_mobile(phone: str) -> str:
    """Chinese numbers as DingTalk and WeCom know them (no ``+86``); other countries keep their prefix."""
    digits = "".join(c for c in phone if c.isdigit() or c == "+")
    if digits.startswith("+86"):
        return digits[3:]
    return digits


def classify_response(response: httpx.Response) -> SendResult:
    answer, _ = provider_answer(response, "DingTalk", ("errcode",))
    errcode, errmsg = answer.get("errcode"), str(answer.get("errmsg", ""))[:200]
    if errcode == 0:
        return SendResult(detail=errmsg or "ok")
    if errcode == THROTTLED:
        raise RetryableError(f"DingTalk: {errmsg}", code=str(errcode), retry_after=THROTTLED_RETRY_SECONDS)
    if errcode == SYSTEM_BUSY:
        raise RetryableError(f"DingTalk: {errmsg}", code=str(errcode))
    # 310000 (signature, keyword or IP check failed), 300001 (token invalid), 400xxx (bad message), ...
    raise TerminalError(f"DingTalk: {errmsg}", code=str(errcode))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
