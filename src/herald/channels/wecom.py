"""WeCom group robot (企业微信群机器人): a JSON POST to ``/cgi-bin/webhook/send?key=…``.

Message formats and limits per WeCom's "群机器人配置说明": text (with ``mentioned_list`` /
``mentioned_mobile_list``), markdown and news (1-8 articles); at most 20 messages a minute per robot.
The key in the URL is the only credential: there is no signature.
"""

from __future__ import annotations

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

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
SEND_PATH = "/cgi-bin/webhook/send"
THROTTLED = 45009  # api freq out of limit: the robot's 20/min budget is spent
THROTTLED_RETRY_SECONDS = 60.0
SYSTEM_BUSY = -1  # global code: 系统繁忙, try again later
USERID_KEY = "wecom_userid"


class WeComSettings(ChannelSettings):
    key: SecretStr = Field(description="The key from the robot's webhook URL (…/cgi-bin/webhook/send?key=…).")
    base_url: str = Field(DEFAULT_BASE_URL, description="API origin; change only to point at a test fake or proxy.")
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for the whole request.")

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("key must not be empty")
        return value


class WeComArticle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, description="Article title (128 bytes at most).")
    description: str | None = Field(None, description="Article summary (512 bytes at most).")
    url: str = Field(min_length=1, description="Link opened by the article.")
    picurl: str | None = Field(None, description="Picture URL; JPG/PNG, 1068x455 large and 150x150 small work best.")


class WeComTemplate(BaseModel):
    """The ``wecom`` template of a notification type; every string may use ``${var}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    msgtype: Literal["text", "markdown", "news"] = Field("markdown", description="WeCom message type.")
    content: str | None = Field(
        None,
        validation_alias=AliasChoices("content", "text", "body"),
        description="text: plain text (2048 bytes at most); markdown: WeCom markdown (4096 bytes at most).",
    )
    articles: list[WeComArticle] = Field(default_factory=list, description="news: 1 to 8 articles.")
    at_recipient: bool = Field(
        False, description="@ the recipient: by phone (text) and by user id from channels.wecom_userid."
    )
    at_all: bool = Field(False, description='@ everyone ("@all"; text only).')

    @model_validator(mode="after")
    def _shape_fits_msgtype(self) -> WeComTemplate:
        if self.msgtype == "news":
            if not 1 <= len(self.articles) <= 8:
                raise ValueError("news needs 1 to 8 articles")
            if self.content:
                raise ValueError("news takes articles, not content")
        else:
            if not self.content:
                raise ValueError(f"{self.msgtype} needs content")
            if self.articles:
                raise ValueError("articles are for news only")
        return self


class WeComChannel(HttpChannel):
    name = "wecom"
    title = "WeCom robot / 企业微信机器人"
    Settings = WeComSettings
    Template = WeComTemplate
    rate_limit = RateLimit(20, 60)

    async def send(self, message: OutboundMessage, settings: WeComSettings) -> SendResult:
        template = parse_template(message.content)
        body = build_body(template, message.recipient)
        response = await self.post_json(
            settings.base_url + SEND_PATH,
            body,
            timeout=settings.timeout,
            params={"key": settings.key.get_secret_value()},
        )
        return classify_response(response)


def parse_template(content: dict[str, Any]) -> WeComTemplate:
    known = {k: v for k, v in content.items() if k in WeComTemplate.model_fields or k in ("text", "body")}
    # The generic {title, body} content: WeCom has no title field, so markdown gets it as a heading.
    if "content" not in known and "text" not in known and content.get("title") and content.get("body"):
        known["content"] = f"**{content['title']}**\n{content['body']}"
        known.pop("body", None)
    try:
        return WeComTemplate.model_validate(known)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise TerminalError(f"wecom template is invalid: {where + ': ' if where else ''}{error['msg']}") from exc


def build_body(template: WeComTemplate, recipient: Recipient) -> dict[str, Any]:
    if template.msgtype == "news":
        articles = [a.model_dump(exclude_none=True) for a in template.articles]
        return {"msgtype": "news", "news": {"articles": articles}}
    user_id = str(recipient.channels.get(USERID_KEY) or "") if template.at_recipient else ""
    if template.msgtype == "markdown":
        # markdown has no mention lists; "<@userid>" in the text is WeCom's way to @ someone there.
        text = template.content or ""
        if user_id and f"<@{user_id}>" not in text:
            text += f"\n<@{user_id}>"
        return {"msgtype": "markdown", "markdown": {"content": text}}
    text_body: dict[str, Any] = {"content": template.content}
    mentioned = [user_id] if user_id else []
    mobiles = [local_mobile(recipient.phone)] if template.at_recipient and recipient.phone else []
    if template.at_all:
        mentioned.append("@all")
    if mentioned:
        text_body["mentioned_list"] = mentioned
    if mobiles:
        text_body["mentioned_mobile_list"] = mobiles
    return {"msgtype": "text", "text": text_body}


def local_mobile(phone: str) -> str:
    """Chinese numbers as WeCom knows them (no ``+86``); other countries keep their prefix."""
    digits = "".join(c for c in phone if c.isdigit() or c == "+")
    return digits[3:] if digits.startswith("+86") else digits


def classify_response(response: httpx.Response) -> SendResult:
    answer, _ = provider_answer(response, "WeCom", ("errcode",))
    errcode, errmsg = answer.get("errcode"), str(answer.get("errmsg", ""))[:200]
    if errcode == 0:
        return SendResult(detail=errmsg or "ok")
    if errcode == THROTTLED:
        raise RetryableError(f"WeCom: {errmsg}", code=str(errcode), retry_after=THROTTLED_RETRY_SECONDS)
    if errcode == SYSTEM_BUSY:
        raise RetryableError(f"WeCom: {errmsg}", code=str(errcode))
    # 93000 (invalid webhook URL / key), 40058 (invalid parameter or content), 40008 (bad msgtype), ...
    raise TerminalError(f"WeCom: {errmsg}", code=str(errcode))
