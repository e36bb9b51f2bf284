"""Feishu custom bot (飞书自定义机器人): a JSON POST to ``/open-apis/bot/v2/hook/{hook_token}``.

Per Feishu's "自定义机器人使用指南": with 签名校验 on, the body carries ``timestamp`` (Unix seconds, as a
string) and ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg=b"")) — the key is the
string to sign and the message is empty, unlike DingTalk. Messages are text, post (rich text) or
interactive (a card); at most 100 requests a minute and 5 a second per bot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

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

DEFAULT_BASE_URL = "https://open.feishu.cn"
HOOK_PATH = "/open-apis/bot/v2/hook/"
SIGN_FAILED = 19021  # sign match fail or timestamp is not within one hour from current time
THROTTLED = 11232  # message service frequency limit (100/min, 5/s)
BAD_REQUEST = 9499  # "Bad Request" (malformed body, over 20 KB) — but also seen with "too many request"
THROTTLED_RETRY_SECONDS = 60.0
USER_ID_KEY = "feishu_user_id"


def sign(secret: str, timestamp: int) -> str:
    """The 签名校验 value: base64 HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"`` over an empty message."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuSettings(ChannelSettings):
    hook_token: SecretStr = Field(
        description="The last path segment of the bot's webhook URL (…/open-apis/bot/v2/hook/{hook_token})."
    )
    secret: SecretStr | None = Field(None, description="The 签名校验 secret, when the bot's security setting uses it.")
    base_url: str = Field(
        DEFAULT_BASE_URL,
        description='API origin: "https://open.feishu.cn", "https://open.larksuite.com" for Lark, or a test fake.',
    )
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for the whole request.")

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("hook_token")
    @classmethod
    def _token_is_one_segment(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token.strip() or "/" in token or "?" in token or "#" in token:
            raise ValueError("hook_token is the last segment of the webhook URL, not the whole URL")
        return value


class FeishuTemplate(BaseModel):
    """The ``feishu`` template of a notification type; every string (card strings too) may use ``${var}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    msg_type: Literal["text", "post", "interactive"] = Field("text", description="Feishu message type.")
    title: str = Field("", description="post: the rich-text title.")
    text: str | None = Field(
        None,
        validation_alias=AliasChoices("text", "body"),
        description="text: the message; post: the body, one paragraph per line.",
    )
    post: dict[str, Any] | None = Field(
        None, description='post: a complete rich-text content ({"zh_cn": {"title", "content": [[…]]}}) instead of text.'
    )
    card: dict[str, Any] | None = Field(None, description="interactive: the card JSON (header, elements, …).")
    at_recipient: bool = Field(False, description="@ the recipient by channels.feishu_user_id (text and post).")
    at_all: bool = Field(False, description="@ everyone (text and post).")

    @model_validator(mode="after")
    def _shape_fits_msg_type(self) -> FeishuTemplate:
        if self.msg_type == "interactive":
            if not self.card:
                raise ValueError("interactive needs a card")
        elif self.card is not None:
            raise ValueError("card is for interactive only")
        if self.msg_type == "text" and not self.text:
            raise ValueError("text needs text")
        if self.msg_type == "post" and not (self.text or self.post):
            raise ValueError("post needs text or post")
        if self.post is not None and self.msg_type != "post":
            raise ValueError("post content is for msg_type post only")
        return self


class FeishuChannel(HttpChannel):
    name = "feishu"
    title = "Feishu bot / 飞书机器人"
    Settings = FeishuSettings
    Template = FeishuTemplate
    rate_limit = RateLimit(100, 60)

    async def send(self, message: OutboundMessage, settings: FeishuSettings) -> SendResult:
        template = parse_template(message.content)
        body = build_body(template, message.recipient)
        if settings.secret is not None:
            timestamp = int(time.time())
            body = {"timestamp": str(timestamp), "sign": sign(settings.secret.get_secret_value(), timestamp), **body}
        url = settings.base_url + HOOK_PATH + quote(settings.hook_token.get_secret_value(), safe="")
        response = await self.post_json(url, body, timeout=settings.timeout)
        return classify_response(response)


def parse_template(content: dict[str, Any]) -> FeishuTemplate:
    known = {k: v for k, v in content.items() if k in FeishuTemplate.model_fields or k == "body"}
    try:
        return FeishuTemplate.model_validate(known)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise TerminalError(f"feishu template is invalid: {where + ': ' if where else ''}{error['msg']}") from exc


def build_body(template: FeishuTemplate, recipient: Recipient) -> dict[str, Any]:
    if template.msg_type == "interactive":
        return {"msg_type": "interactive", "card": template.card}
    mentions = _mentions(template, recipient)
    if template.msg_type == "text":
        tags = "".join(f' <at user_id="{html.escape(uid)}">{html.escape(name)}</at>' for uid, name in mentions)
        return {"msg_type": "text", "content": {"text": (template.text or "") + tags}}
    post = template.post or {
        "zh_cn": {
            "title": template.title,
            "content": [[{"tag": "text", "text": line}] for line in (template.text or "").split("\n")],
        }
    }
    if mentions:
        post = {
            lang: {**doc, "content": [*doc.get("content", []), [{"tag": "at", "user_id": uid} for uid, _ in mentions]]}
            for lang, doc in post.items()
        }
    return {"msg_type": "post", "content": {"post": post}}


def _mentions(template: FeishuTemplate, recipient: Recipient) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    user_id = recipient.channels.get(USER_ID_KEY) if template.at_recipient else None
    if user_id:
        found.append((str(user_id), recipient.name or ""))
    if template.at_all:
        found.append(("all", "所有人"))
    return found


def classify_response(response: httpx.Response) -> SendResult:
    answer, code_key = provider_answer(response, "Feishu", ("code", "StatusCode"))
    code = answer[code_key]
    msg = str(answer.get("msg", answer.get("StatusMessage", "")))[:200]
    if code == 0:
        return SendResult(detail=msg or "success")
    if code == THROTTLED or (code == BAD_REQUEST and _says_throttled(msg)):
        raise RetryableError(f"Feishu: {msg}", code=str(code), retry_after=THROTTLED_RETRY_SECONDS)
    # 19021 (signature or timestamp), 19001 (bad hook token), 9499 Bad Request, 19024 (keyword check), ...
    raise TerminalError(f"Feishu: {msg}", code=str(code))


def _says_throttled(msg: str) -> bool:
    lowered = msg.lower()
    return any(word in lowered for word in ("too many", "frequency", "rate limit", "freq limit"))
