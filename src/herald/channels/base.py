"""The channel protocol. A channel is one file in this package holding one ``Channel`` subclass.

A subclass declares:

- ``name``: the channel kind used in the API (``email``, ``webhook``, ...);
- ``Settings``: a pydantic model of its account settings (``SecretStr`` fields are write-only:
  encrypted at rest, masked on every read) — ``GET /v1/channels`` serves its JSON Schema;
- ``requires_template``: whether a notification type needs a template for this channel;
- ``Template`` (optional): a pydantic model of the channel's template fields (SMS template code,
  WeChat template id and data mapping, robot msgtype, ...), each string a ``${var}`` template;
- ``rate_limit`` (optional): the provider's per-account limit, enforced by the engine;
- ``send(message, settings)``: deliver one message or raise a ``herald.core.errors`` error;
- ``routes()`` (optional): the channel's own HTTP routes (subscriptions, grants, public keys), each a
  ``ChannelRoute`` whose handler gets a ``ChannelRequest``; the app mounts them.

Channels never touch the store or the API: everything they need arrives in ``OutboundMessage``, or,
for their routes, through ``ChannelRequest``.
Subclasses are discovered by importing every module of this package, so adding a channel touches
nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from herald.core.errors import Invalid
from herald.core.records import Endpoint, Profile
from herald.core.urls import MASK


class ChannelSettings(BaseModel):
    """Base for every channel's account settings."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def secret_fields(cls) -> list[str]:
        """Fields holding secrets (``SecretStr``, optional or in a list): write-only, masked on read."""
        return [name for name, f in cls.model_fields.items() if _holds_secret(f.annotation)]

    @classmethod
    def masked(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """A stored config as every read shows it: each secret field reads as ``MASK``. A channel
        with secrets inside other fields (a token in a URL, an ``Authorization`` header) masks
        those too, and takes them back in ``keep_masked``."""
        secrets = cls.secret_fields()
        return {k: (_mask(v) if k in secrets else v) for k, v in config.items()}

    @classmethod
    def keep_masked(cls, config: dict[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """``config`` as an admin sent it back, each masked part replaced by the stored value (a form
        round-trip keeps the secrets it was shown masked); ``Invalid`` naming ``config.<field>``
        when there is nothing stored to keep."""
        for key in cls.secret_fields():
            if is_masked(config.get(key)):
                if not stored or key not in stored:
                    raise Invalid([(f"config.{key}", "send the secret itself, not the mask")])
                config[key] = stored[key]
        return config

    @classmethod
    def refuse_moved_secrets(
        cls, sent: Mapping[str, Any], config: Mapping[str, Any], stored: Mapping[str, Any]
    ) -> None:
        """``Invalid`` naming each secret that ``sent`` (the config as the admin sent it) kept masked
        while a setting deciding where it goes changed (``config``: after ``keep_masked``): else a
        stored secret could be sent to a server of the editor's choosing, though never shown."""
        kept = [key for key in cls.secret_fields() if is_masked(sent.get(key))]
        moved = cls._destination_changes(config, stored) if kept else []
        if moved:
            why = f"send the secret again: {', '.join(moved)} changed, and a kept secret goes only where it went"
            raise Invalid([(f"config.{key}", why) for key in kept])

    @classmethod
    def _destination_changes(cls, config: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
        """The non-secret settings that decide where (and as whom) a secret is sent — host, port, URL,
        endpoint, user, TLS, region, … — whose value differs between ``config`` and ``stored``,
        compared as validated (``"587"`` and ``587`` are the same port)."""
        try:
            new, old = cls.model_validate(dict(config)), cls.model_validate(dict(stored))
        except ValidationError:
            return []  # the save refuses the config anyway, naming what is wrong
        secrets = set(cls.secret_fields())
        return [
            name
            for name in cls.model_fields
            if name not in secrets
            and any(part in name.lower() for part in _DESTINATION_PARTS)
            and getattr(new, name) != getattr(old, name)
        ]


_DESTINATION_PARTS = ("host", "port", "url", "endpoint", "server", "user", "tls", "ssl", "region", "domain", "app")


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_holds_secret(a) for a in get_args(annotation))


def _mask(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return MASK if value not in (None, "") else value


def is_masked(value: Any) -> bool:
    """A secret sent back as the API showed it: the mask, or a list of masks."""
    if isinstance(value, list):
        return bool(value) and all(v == MASK for v in value)
    return bool(value == MASK)


@dataclass(frozen=True)
class Recipient(Profile):
    """The user a message goes to: their profile, and for some channels their registered endpoints."""

    endpoints: tuple[Endpoint, ...] = ()
    """The addresses this user registered with the channel being sent (only for channels that set
    ``uses_endpoints``): e.g. their browsers' Web Push subscriptions."""


@dataclass(frozen=True)
class OutboundMessage:
    """One delivery, rendered: what a channel needs to send it."""

    delivery_id: str
    notification_id: str
    type: str
    category: str
    recipient: Recipient
    content: dict[str, Any]
    """The type's template for this channel, rendered for this recipient's locale."""
    data: dict[str, Any]
    """The trigger's raw data."""
    attempt: int = 1
    created_at: str | None = None
    unsubscribe_url: str | None = None
    """A signed link that turns this type off on this channel for this recipient, without login
    (RFC 8058 one-click; email puts it in ``List-Unsubscribe``). None when Herald has no public
    URL (HERALD_PUBLIC_URL) or the type is critical."""


@dataclass(frozen=True)
class Receipt:
    """A provider's delivery report for one message (an SMS status report, ...)."""

    delivered: bool
    delivery_id: str | None = None
    provider_message_id: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` sends per ``per_seconds`` for one account (the engine enforces it)."""

    count: int
    per_seconds: float


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None
    detail: str | None = None
    gone: tuple[str, ...] = ()
    """Addresses the provider says no longer exist (e.g. Web Push endpoints answered 404/410):
    the engine forgets them."""


class SharedCache(Protocol):
    """Values every Herald process sees (the database, or Redis when configured): provider access
    tokens, generated keys. Given to channels by the engine; channels never touch the store."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None: ...

    async def add(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        """Set only if absent; True if this call set it (a cross-process "first one wins")."""

    async def delete(self, key: str) -> None: ...


RouteAuth = Literal["public", "user", "send", "read", "admin"]
"""Who may call a channel route: anyone; a user token (the route sees only that user); an API key
with the ``send``, ``read`` or ``admin`` scope (``admin`` passes every scope)."""

RouteMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
BodyT = TypeVar("BodyT", bound=BaseModel)


@dataclass(frozen=True)
class PublicAccount:
    """One of the channel's accounts as its routes may see it: the config without its secret fields."""

    name: str
    default: bool
    config: dict[str, Any]


class ChannelEndpoints(Protocol):
    """The addresses the request's user registered with this channel (see ``uses_endpoints``)."""

    async def save(self, address: str, data: dict[str, Any]) -> bool:
        """Register ``address`` for the user (again: its ``data`` is replaced); False when another
        user holds it. One address is one device: it moves to this user only when registered with
        the same ``data`` as the holder's (the device's own keys), never on the address alone."""

    async def delete(self, address: str) -> bool:
        """Forget one of the user's addresses; False if the user has no such address."""

    async def registered(self) -> list[Endpoint]:
        """The user's addresses, oldest first."""


class ChannelGrants(Protocol):
    """Consumable per-user send grants for the request's user (e.g. mini-program subscriptions).

    Keys are the channel's own and must start with ``"<channel name>:"``; the engine takes one grant
    of ``Channel.quota_key(message)`` per send."""

    async def grant(self, key: str, count: int) -> int:
        """Add ``count`` grants (making the user known); returns how many remain."""

    async def remaining(self, key: str) -> int: ...


class ChannelRequest(Protocol):
    """What a channel route's handler may use; given by the engine. Raise ``herald.core.errors.Invalid``
    (422 naming fields) or ``NotFound`` (404) for bad requests."""

    @property
    def user_id(self) -> str:
        """The caller's user id on ``user`` routes, the path's ``{user_id}`` on API-key routes;
        RuntimeError on routes with neither."""

    @property
    def path_params(self) -> Mapping[str, str]: ...

    def body_as(self, model: type[BodyT]) -> BodyT:
        """The request body, validated as the route's ``body`` model (TypeError for another model)."""

    @property
    def endpoints(self) -> ChannelEndpoints: ...

    @property
    def grants(self) -> ChannelGrants: ...

    async def accounts(self) -> list[PublicAccount]:
        """This channel's accounts (by name), secrets left out."""

    @property
    def allow_private_urls(self) -> bool:
        """``HERALD_ALLOW_PRIVATE_URLS``: private, loopback and link-local addresses are allowed."""

    async def require_public_url(self, url: str, *, field: str) -> None:
        """SSRF check of a user-supplied URL (https only, every resolved address public unless private
        URLs are allowed); ``Invalid`` naming ``field`` otherwise."""


RouteHandler = Callable[[ChannelRequest], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class ChannelRoute:
    """One HTTP route a channel declares (``Channel.routes``); the app mounts it under ``path``.

    ``path`` is absolute (``/v1/...``); ``user`` routes live under ``/v1/me/`` and may not take a
    ``{user_id}``. The handler's dict is the JSON answer (None for a 204). ``idempotent`` POSTs honour
    ``Idempotency-Key`` like every POST that creates something.
    """

    method: RouteMethod
    path: str
    handler: RouteHandler
    auth: RouteAuth
    body: type[BaseModel] | None = None
    status_code: int = 200
    summary: str = ""
    idempotent: bool = False


class Channel(ABC):
    name: ClassVar[str]
    title: ClassVar[str] = ""
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    requires_template: ClassVar[bool] = True
    requires_account: ClassVar[bool] = True
    Template: ClassVar[type[BaseModel] | None] = None
    """Optional model of this channel's template fields, checked when a template is saved."""
    rate_limit: ClassVar[RateLimit | None] = None
    """The provider's per-account limit; a delivery without a token waits in the queue."""
    routes_for: ClassVar[str | None] = None
    """A provider of a logical channel (``sms_aliyun`` and ``sms_tencent`` route for ``sms``): a
    delivery of the logical channel goes through one account of its providers, chosen by weight,
    failing over between them. The logical channel is a ``Channel`` with ``routes_over`` set."""
    routes_over: ClassVar[tuple[str, ...]] = ()
    """Set by the registry on a logical channel: the providers that declared ``routes_for`` it."""
    uses_endpoints: ClassVar[bool] = False
    """The engine hands this channel the addresses users registered with it (``Recipient.endpoints``)
    and forgets those a send reports ``gone``."""

    @abstractmethod
    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        """Deliver ``message`` with an account's validated ``settings``.

        Raise ``RetryableError`` (with ``retry_after`` when the provider says), ``TerminalError``
        or ``SkipDelivery``; return a ``SendResult`` on success.
        """

    def missing_address(self, recipient: Recipient) -> str | None:
        """Why ``recipient`` cannot be reached on this channel (``"no email address"``), or None.

        Laravel's ``routeNotificationFor``: the channel says where a recipient receives. The engine
        asks before spending a send budget or a grant, and skips the delivery with this reason.
        """
        return None

    quota_exhausted_codes: ClassVar[frozenset[str]] = frozenset()
    """Provider codes meaning the recipient has no grants left: the engine zeroes the quota."""

    receipt_ack: ClassVar[dict[str, Any] | None] = None
    """For channels whose provider posts delivery reports: the answer it expects; see parse_receipts."""

    cache: SharedCache | None = None
    allow_private_urls: bool = False
    """``HERALD_ALLOW_PRIVATE_URLS`` as the engine read it from the settings (``bind``): user-supplied
    URLs a channel sends to (push endpoints) may then be private, loopback or link-local."""

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        """Decode a delivery-report callback body (only for channels that set ``receipt_ack``);
        ValueError when it is not one."""
        raise NotImplementedError(f"{self.name} takes no delivery reports")

    def quota_key(self, message: OutboundMessage) -> str | None:
        """The consumable per-user grant this send needs (e.g. a mini-program subscription to one
        template), or None. The engine takes one before ``send`` and skips the delivery when none is
        left; it gives the grant back when the send fails for another reason."""
        return None

    def routes(self) -> Sequence[ChannelRoute]:
        """The channel's own HTTP routes (subscriptions, grants, public keys), mounted by the app."""
        return ()

    def bind(self, cache: SharedCache, *, allow_private_urls: bool = False) -> None:
        """Called by the engine once per process, before any send."""
        self.cache = cache
        self.allow_private_urls = allow_private_urls

    @classmethod
    def complete_settings(cls, config: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        """Fill in what an admin may leave out when saving an account (e.g. keys generated on
        first save, kept on later saves); ``stored`` is the account's current config, if any."""
        return config

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most channels hold nothing
        """Release pooled connections; called at shutdown."""
