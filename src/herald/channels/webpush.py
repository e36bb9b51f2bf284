"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291), via pywebpush.

Browsers subscribe through the channel's own routes: ``GET /v1/webpush/public-key`` (the VAPID
applicationServerKey, public) and ``POST``/``DELETE /v1/me/webpush-subscriptions`` (user token; the
endpoint is checked against SSRF), stored as the user's endpoints (address = the endpoint, data =
``{"p256dh", "auth"}``). The engine hands them over in ``recipient.endpoints``; one message goes to
every subscription. Endpoints the push service reports as gone (404/410) come back in ``gone`` so the
engine forgets them.

requests (with urllib3), cryptography's elliptic curves and pywebpush are imported on first use (a
send, an account saved, a key checked), never at start: a server without a Web Push account never
needs them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from herald.channels._http import parse_retry_after
from herald.channels.base import (
    Channel,
    ChannelRequest,
    ChannelRoute,
    ChannelSettings,
    OutboundMessage,
    Recipient,
    SendResult,
)
from herald.core.errors import Conflict, NotFound, RetryableError, SkipDelivery, TerminalError
from herald.core.records import Endpoint
from herald.core.urls import UnsafeURL, is_public_address, redact_url, split_public_url

if TYPE_CHECKING:
    import requests
    from py_vapid import Vapid  # type: ignore[import-untyped]

GONE_STATUSES = frozenset({404, 410})
RETRYABLE_STATUSES = frozenset({408, 429})
# Push services take at most 4096 bytes of encrypted body; aes128gcm adds an 86-byte header, a
# padding delimiter and a 16-byte tag, so the JSON must stay under ~3990 bytes. Keep a margin.
MAX_PAYLOAD_BYTES = 3800
MAX_TTL_SECONDS = 28 * 24 * 3600  # the longest any major push service keeps a message


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_vapid_keys() -> tuple[str, str]:
    """A fresh VAPID key pair: (private key, public key), both base64url without padding.

    The private key is the raw 32-byte P-256 scalar (what pywebpush takes as ``vapid_private_key``);
    the public key is the 65-byte uncompressed point browsers take as ``applicationServerKey``.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_raw = key.private_numbers().private_value.to_bytes(32, "big")
    public_raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(private_raw), b64url(public_raw)


def public_key_of(private_key: str) -> str:
    """The base64url uncompressed public point of a raw base64url private scalar."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    scalar = int.from_bytes(b64url_decode(private_key), "big")
    public = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
    return b64url(public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


class WebPushSettings(ChannelSettings):
    vapid_subject: str = Field(
        description='Contact for push services (VAPID "sub"): "mailto:ops@example.com" or an https:// URL.'
    )
    vapid_private_key: SecretStr | None = Field(
        None,
        description="VAPID private key: base64url of the raw 32-byte P-256 scalar. Generated when omitted.",
    )
    vapid_public_key: str | None = Field(
        None,
        description="VAPID public key: base64url of the 65-byte uncompressed P-256 point (applicationServerKey).",
    )
    ttl: int = Field(
        86400, ge=1, le=MAX_TTL_SECONDS, description="Seconds a push service keeps an undelivered message."
    )
    urgency: Literal["very-low", "low", "normal", "high"] = Field("normal", description="RFC 8030 Urgency header.")
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for each push service request.")

    @field_validator("vapid_subject")
    @classmethod
    def _contact(cls, value: str) -> str:
        if value.startswith("mailto:") and "@" in value:
            return value
        if value.startswith("https://") and len(value) > len("https://"):
            return value
        raise ValueError('vapid_subject must be a "mailto:" address or an "https://" URL')

    @field_validator("vapid_private_key")
    @classmethod
    def _raw_scalar(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            raw = b64url_decode(value.get_secret_value())
            valid = len(raw) == 32 and 0 < int.from_bytes(raw, "big")
            if valid:
                public_key_of(value.get_secret_value())
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("vapid_private_key must be base64url of a raw 32-byte P-256 private key")
        return value

    @field_validator("vapid_public_key")
    @classmethod
    def _uncompressed_point(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            raw = b64url_decode(value)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
            valid = len(raw) == 65 and raw[0] == 4
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("vapid_public_key must be base64url of a 65-byte uncompressed P-256 point")
        return value


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p256dh: Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")]
    auth: Annotated[str, StringConstraints(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_=-]+$")]


class PushSubscriptionIn(BaseModel):
    """The browser's PushSubscription.toJSON()."""

    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    keys: PushKeys
    expirationTime: int | None = None  # the browser's own field name


class PushEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=2048)]


async def webpush_public_key(request: ChannelRequest) -> dict[str, Any]:
    """The applicationServerKey browsers subscribe with (public by nature: no credentials needed)."""
    accounts = await request.accounts()
    account = next((a for a in accounts if a.default), accounts[0] if accounts else None)
    if account is None or not account.config.get("vapid_public_key"):
        raise NotFound("Web Push account")
    return {"public_key": account.config["vapid_public_key"], "account": account.name}


async def subscribe_webpush(request: ChannelRequest) -> dict[str, Any]:
    """Save this browser's push subscription for the caller (the endpoint is checked against SSRF)."""
    body = request.body_as(PushSubscriptionIn)
    await request.require_public_url(body.endpoint, field="endpoint")
    # Another user's subscription moves here only with its own keys (the same browser, signed in
    # as someone else now); knowing the endpoint URL alone never takes someone's pushes: 409.
    if not await request.endpoints.save(body.endpoint, {"p256dh": body.keys.p256dh, "auth": body.keys.auth}):
        raise Conflict("this push endpoint is subscribed by another user with other keys")
    return {"endpoint": body.endpoint, "user_id": request.user_id}


async def unsubscribe_webpush(request: ChannelRequest) -> None:
    """Forget one of the caller's push subscriptions (404 if the caller has no such endpoint)."""
    if not await request.endpoints.delete(request.body_as(PushEndpointIn).endpoint):
        raise NotFound("push subscription")


class WebPushRetryableError(RetryableError):
    """No subscription accepted the message and one may later; ``gone`` lists endpoints seen gone."""

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None, gone: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.gone = gone


class WebPushTerminalError(TerminalError):
    """No subscription accepted the message nor ever will; ``gone`` lists endpoints seen gone."""

    def __init__(self, message: str, *, code: str | None = None, gone: tuple[str, ...] = ()) -> None:
        super().__init__(message, code=code)
        self.gone = gone


@dataclass(frozen=True)
class Outcome:
    """What happened to one subscription."""

    endpoint: str
    kind: Literal["ok", "gone", "retry", "failed"]
    detail: str
    status: int | None = None
    retry_after: float | None = None
    location: str | None = None


@cache
def _no_redirect_session() -> type[requests.Session]:
    """A requests session that never follows redirects (a class made on first send: requests is
    imported then). requests follows redirects on POST by default; a push service never
    redirects, and following one would carry the request to a host the SSRF check never saw."""
    import requests

    class NoRedirectSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs["allow_redirects"] = False
            return super().request(*args, **kwargs)

    return NoRedirectSession


class WebPushChannel(Channel):
    name = "webpush"
    title = "Web Push"
    Settings = WebPushSettings
    requires_template = True
    uses_endpoints: ClassVar[bool] = True

    def routes(self) -> Sequence[ChannelRoute]:
        return (
            ChannelRoute(
                "GET", "/v1/webpush/public-key", webpush_public_key, auth="public", summary="Web Push public key"
            ),
            ChannelRoute(
                "POST",
                "/v1/me/webpush-subscriptions",
                subscribe_webpush,
                auth="user",
                body=PushSubscriptionIn,
                status_code=201,
                summary="Subscribe this browser",
            ),
            ChannelRoute(
                "DELETE",
                "/v1/me/webpush-subscriptions",
                unsubscribe_webpush,
                auth="user",
                body=PushEndpointIn,
                status_code=204,
                summary="Unsubscribe a browser",
            ),
        )

    @classmethod
    def complete_settings(cls, config: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        """VAPID keys are generated on the first save and kept afterwards: browsers' subscriptions
        only work with the key they were made with."""
        if config.get("vapid_private_key"):
            if not config.get("vapid_public_key"):
                return {**config, "vapid_public_key": public_key_of(config["vapid_private_key"])}
            return config
        if stored and stored.get("vapid_private_key"):
            return {
                **config,
                "vapid_private_key": stored["vapid_private_key"],
                "vapid_public_key": stored.get("vapid_public_key"),
            }
        private, public = generate_vapid_keys()
        return {**config, "vapid_private_key": private, "vapid_public_key": public}

    def missing_address(self, recipient: Recipient) -> str | None:
        return None if recipient.endpoints else "no Web Push subscription"

    async def send(self, message: OutboundMessage, settings: WebPushSettings) -> SendResult:
        subscriptions = unique_subscriptions(message.recipient.endpoints)
        if not subscriptions:
            raise SkipDelivery("no Web Push subscription")
        if settings.vapid_private_key is None:
            raise TerminalError("VAPID keys missing")
        from py_vapid import Vapid  # on first send: pywebpush pulls aiohttp

        vapid = Vapid.from_raw(settings.vapid_private_key.get_secret_value().encode())
        payload = encode_payload(message)
        allow_private = self.allow_private_urls  # the settings' value, the same the API honours
        outcomes = await asyncio.gather(
            *(self._push(sub, payload, vapid, settings, allow_private=allow_private) for sub in subscriptions)
        )
        return summarize(list(outcomes))

    async def _push(
        self,
        subscription: dict[str, Any],
        payload: str,
        vapid: Vapid,
        settings: WebPushSettings,
        *,
        allow_private: bool,
    ) -> Outcome:
        endpoint = subscription["endpoint"]
        refusal = await refuse_unsafe_endpoint(endpoint, allow_private=allow_private)
        if refusal is not None:
            return refusal
        return await asyncio.to_thread(post_to_push_service, subscription, payload, vapid, settings)


def unique_subscriptions(endpoints: Iterable[Endpoint]) -> list[dict[str, Any]]:
    """The endpoints as pywebpush subscriptions (``{"endpoint", "keys": {"p256dh", "auth"}}``), one per
    address; empty addresses are ignored."""
    seen: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if endpoint.address:
            keys = {k: endpoint.data[k] for k in ("p256dh", "auth") if k in endpoint.data}
            seen.setdefault(endpoint.address, {"endpoint": endpoint.address, "keys": keys})
    return list(seen.values())


def _first_text(content: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = content.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def build_payload(message: OutboundMessage) -> dict[str, Any]:
    content = message.content
    return {
        "title": _first_text(content, "title", "subject") or message.type,
        "body": _first_text(content, "body", "text", "summary"),
        "url": _first_text(content, "action_url", "url") or None,
        "data": message.data,
        "notification_id": message.notification_id,
        "delivery_id": message.delivery_id,
        "type": message.type,
    }


def encode_payload(message: OutboundMessage) -> str:
    """Compact JSON that fits a push message: ``data`` is dropped, then ``body`` cut, if too large."""
    payload = build_payload(message)

    def dump() -> str:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)

    text = dump()
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        payload["data"] = {}
        text = dump()
    while len(text.encode()) > MAX_PAYLOAD_BYTES and payload["body"]:
        # Cut by UTF-8 bytes (JSON escapes may need another round), never inside a character.
        body = payload["body"].removesuffix("…").encode()
        keep = max(0, len(body) - (len(text.encode()) - MAX_PAYLOAD_BYTES) - len("…".encode()))
        payload["body"] = body[:keep].decode(errors="ignore") + "…" if keep else ""
        text = dump()
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise TerminalError(f"the Web Push payload is larger than {MAX_PAYLOAD_BYTES} bytes even without data and body")
    return text


async def refuse_unsafe_endpoint(endpoint: str, *, allow_private: bool) -> Outcome | None:
    """A failed Outcome if ``endpoint`` is not a public https URL (SSRF), else None."""
    try:
        host, port = split_public_url(endpoint, allow_private=allow_private)
    except UnsafeURL as exc:
        return Outcome(endpoint, "failed", f"endpoint refused: {exc}")
    if allow_private:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return Outcome(endpoint, "retry", f"endpoint host does not resolve: {exc}")
    if not infos or not all(is_public_address(str(info[4][0])) for info in infos):
        return Outcome(
            endpoint, "failed", "endpoint refused: its host resolves to a private, loopback or link-local address"
        )
    return None


def post_to_push_service(
    subscription: dict[str, Any], payload: str, vapid: Vapid, settings: WebPushSettings
) -> Outcome:
    """Encrypt and POST one message (blocking: pywebpush uses requests)."""
    import requests
    from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

    endpoint = subscription["endpoint"]
    with _no_redirect_session()() as session:
        try:
            response = webpush(
                subscription_info=subscription,
                data=payload,
                vapid_private_key=vapid,
                vapid_claims={"sub": settings.vapid_subject},  # pywebpush adds aud (endpoint origin) and exp
                content_encoding="aes128gcm",
                ttl=settings.ttl,
                headers={"Urgency": settings.urgency},
                timeout=settings.timeout,
                requests_session=session,
            )
        except WebPushException as exc:
            if exc.response is None:  # a malformed subscription (missing or bad keys)
                return Outcome(endpoint, "failed", f"bad subscription: {exc.message}")
            return classify_response(endpoint, exc.response)
        except requests.RequestException as exc:
            return Outcome(endpoint, "retry", f"{type(exc).__name__}: {exc}")
        except (ValueError, TypeError) as exc:  # undecodable p256dh/auth, a point not on the curve
            return Outcome(endpoint, "failed", f"bad subscription keys: {exc}")
    assert isinstance(response, requests.Response)
    return classify_response(endpoint, response)


def classify_response(endpoint: str, response: requests.Response) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(endpoint, "ok", f"HTTP {status}", status, location=response.headers.get("location"))
    text = response.text[:200]
    if status in GONE_STATUSES:
        return Outcome(endpoint, "gone", f"HTTP {status}: subscription expired or unsubscribed", status)
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Outcome(endpoint, "retry", f"HTTP {status}: {text}", status, retry_after)
    # 413 (payload too large), 400/401/403 (bad VAPID or keys), 3xx (redirects are not followed).
    return Outcome(endpoint, "failed", f"HTTP {status}: {text}", status)


def summarize(outcomes: list[Outcome]) -> SendResult:
    """One result for the delivery.

    - some subscription accepted it → success, ``detail`` "n/m", gone endpoints reported;
    - every subscription gone → success with ``gone`` covering them all and no provider id (the
      engine marks such a delivery skipped and forgets the endpoints);
    - otherwise, any retryable failure → ``RetryableError`` (the longest ``Retry-After``), else
      ``TerminalError``. Either error carries ``gone`` too, so the engine can forget those endpoints.
    """
    gone = tuple(o.endpoint for o in outcomes if o.kind == "gone")
    delivered = [o for o in outcomes if o.kind == "ok"]
    if delivered:
        return SendResult(
            provider_message_id=next((o.location for o in delivered if o.location), None),
            detail=f"{len(delivered)}/{len(outcomes)}",
            gone=gone,
        )
    if len(gone) == len(outcomes):
        return SendResult(detail="no live subscription", gone=gone)
    failures = [o for o in outcomes if o.kind in ("retry", "failed")]
    summary = "; ".join(f"{_short(o.endpoint)}: {o.detail}" for o in failures)[:500]
    retryable = [o for o in failures if o.kind == "retry"]
    if retryable:
        waits = [o.retry_after for o in retryable if o.retry_after is not None]
        raise WebPushRetryableError(
            f"no Web Push subscription accepted the message: {summary}",
            code=_code(retryable),
            retry_after=max(waits) if waits else None,
            gone=gone,
        )
    raise WebPushTerminalError(
        f"no Web Push subscription accepted the message: {summary}", code=_code(failures), gone=gone
    )


def _code(outcomes: list[Outcome]) -> str | None:
    return next((str(o.status) for o in outcomes if o.status is not None), None)


def _short(endpoint: str) -> str:
    # Endpoints are capability URLs: traces (read through the API) keep the origin and the path's
    # shape, never the token.
    shown = redact_url(endpoint)
    return shown if len(shown) <= 80 else shown[:72] + "…"
