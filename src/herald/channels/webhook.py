"""Signed webhooks: a JSON POST signed per the Standard Webhooks spec (https://www.standardwebhooks.com/)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from herald.channels._http import HttpChannel, encode_json_body, parse_retry_after
from herald.channels.base import ChannelSettings, OutboundMessage, SendResult
from herald.core.errors import Invalid, RetryableError, TerminalError
from herald.core.urls import MASK, redact_url

if TYPE_CHECKING:
    import httpx

USER_AGENT = "Herald-Webhooks/0.1"
WHSEC_PREFIX = "whsec_"
EVENT_TYPE = "notification.delivery"
# Headers Herald owns: letting an account override them would break the signature or the body.
RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length", "host"}
)
RETRYABLE_STATUSES = frozenset({408, 429})


def secret_key(secret: str) -> bytes:
    """The HMAC key: ``whsec_`` secrets are base64 after the prefix, anything else is used as UTF-8."""
    if secret.startswith(WHSEC_PREFIX):
        return base64.b64decode(secret.removeprefix(WHSEC_PREFIX), validate=True)
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookSettings(ChannelSettings):
    url: str = Field(description="Receiver URL (http or https). Redirects are not followed.")
    secret: SecretStr = Field(
        description='Signing secret: "whsec_" + base64 (Standard Webhooks), or any string used as UTF-8.'
    )
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for the whole request.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")

    @classmethod
    def masked(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Besides ``secret``: the URL's userinfo, query values and token-like path segments, and
        every header value (``Authorization: Bearer …`` and the like) read as the mask."""
        out = super().masked(config)
        if isinstance(out.get("url"), str):
            out["url"] = redact_url(out["url"])
        if isinstance(out.get("headers"), dict):
            out["headers"] = {name: MASK for name in out["headers"]}
        return out

    @classmethod
    def keep_masked(cls, config: dict[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """The URL sent back exactly as shown keeps the stored one; a header sent back as the mask
        keeps its stored value. A mask anywhere else cannot be filled in: 422."""
        config = super().keep_masked(config, stored)
        url = config.get("url")
        if isinstance(url, str) and MASK in url:
            stored_url = stored.get("url") if stored else None
            if not isinstance(stored_url, str) or url != redact_url(stored_url):
                raise Invalid(
                    [("config.url", "send the whole URL: the masked one is kept only when sent back unchanged")]
                )
            config["url"] = stored_url
        headers = config.get("headers")
        if isinstance(headers, dict) and MASK in headers.values():
            stored_headers = stored.get("headers") if stored else None
            known = {str(k).lower(): v for k, v in (stored_headers or {}).items()}
            kept: dict[str, Any] = {}
            for name, value in headers.items():
                if value == MASK:
                    if str(name).lower() not in known:
                        raise Invalid([(f"config.headers.{name}", "send the header value itself, not the mask")])
                    value = known[str(name).lower()]
                kept[name] = value
            config["headers"] = kept
        return config

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _decodable_secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        try:
            key = secret_key(raw)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
        if not key:
            raise ValueError("secret must not be empty")
        return value

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by Herald")
            if any(c in name + header_value for c in "\r\n\0") or not name.strip():
                raise ValueError(f"header {name!r} is not a valid header")
        return value


class WebhookChannel(HttpChannel):
    name = "webhook"
    title = "Webhook"
    Settings = WebhookSettings
    requires_template = False

    async def send(self, message: OutboundMessage, settings: WebhookSettings) -> SendResult:
        now = datetime.now(UTC)
        return await self.post_signed(settings, message.delivery_id, encode_payload(message, now), now)

    async def post_signed(self, settings: WebhookSettings, msg_id: str, body: bytes, now: datetime) -> SendResult:
        """POST ``body`` signed per Standard Webhooks with ``msg_id`` as webhook-id (also used for
        Herald's own event webhooks)."""
        import httpx  # on first send (channels/_http.py)

        headers = signed_headers(settings, msg_id, int(now.timestamp()), body)
        try:
            response = await self._http().post(settings.url, content=body, headers=headers, timeout=settings.timeout)
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        return classify_response(response)


def build_payload(message: OutboundMessage, now: datetime) -> dict[str, Any]:
    recipient = message.recipient
    return {
        "type": EVENT_TYPE,
        "timestamp": now.isoformat(),
        "data": {
            "delivery_id": message.delivery_id,
            "notification_id": message.notification_id,
            "notification_type": message.type,
            "category": message.category,
            "recipient": {
                "id": recipient.id,
                "name": recipient.name,
                "email": recipient.email,
                "phone": recipient.phone,
            },
            "content": message.content,
            "data": message.data,
            "attempt": message.attempt,
        },
    }


def encode_payload(message: OutboundMessage, now: datetime) -> bytes:
    # The signature covers these exact bytes, so they are produced once and sent as-is.
    # Content that cannot be UTF-8 (a lone surrogate) is terminal: it would fail every retry.
    return encode_json_body(build_payload(message, now), separators=(",", ":"), default=str)


def signed_headers(settings: WebhookSettings, msg_id: str, timestamp: int, body: bytes) -> httpx.Headers:
    import httpx  # on first send (channels/_http.py)

    headers = httpx.Headers({"user-agent": USER_AGENT})
    headers.update(settings.headers)  # case-insensitive, so an account may replace the user-agent
    headers["content-type"] = "application/json"
    # The delivery id is stable across retries, so receivers can deduplicate on it.
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    headers["webhook-signature"] = sign(settings.secret.get_secret_value(), msg_id, timestamp, body)
    return headers


def classify_response(response: httpx.Response) -> SendResult:
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(detail=f"HTTP {status}")
    if status in RETRYABLE_STATUSES or status >= 500:
        raise RetryableError(
            f"receiver answered HTTP {status}",
            code=str(status),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    # 3xx lands here too: redirects are not followed, so the configured URL is wrong.
    raise TerminalError(f"receiver answered HTTP {status}: {response.text[:200]}", code=str(status))
