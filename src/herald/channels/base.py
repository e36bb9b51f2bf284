"""The channel protocol. A channel is one file in this package holding one ``Channel`` subclass.

A subclass declares:

- ``name``: the channel kind used in the API (``email``, ``webhook``, ...);
- ``Settings``: a pydantic model of its account settings (``SecretStr`` fields are write-only:
  encrypted at rest, masked on every read) — ``GET /v1/channels`` serves its JSON Schema;
- ``requires_template``: whether a notification type needs a template for this channel;
- ``Template`` (optional): a pydantic model of the channel's template fields (SMS template code,
  WeChat template id and data mapping, robot msgtype, ...), each string a ``${var}`` template;
- ``rate_limit`` (optional): the provider's per-account limit, enforced by the engine;
- ``send(message, settings)``: deliver one message or raise a ``herald.core.errors`` error.

Channels never touch the store or the API: everything they need arrives in ``OutboundMessage``.
Subclasses are discovered by importing every module of this package, so adding a channel touches
nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, get_args

from pydantic import BaseModel, ConfigDict, SecretStr


class ChannelSettings(BaseModel):
    """Base for every channel's account settings."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def secret_fields(cls) -> list[str]:
        """Fields holding secrets (``SecretStr``, optional or in a list): write-only, masked on read."""
        return [name for name, f in cls.model_fields.items() if _holds_secret(f.annotation)]


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_holds_secret(a) for a in get_args(annotation))


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    channels: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


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
    routes_over: ClassVar[tuple[str, ...]] = ()
    """A routing channel (``sms``) sends nothing itself: each delivery goes through one account of
    these channels, chosen by weight, failing over between them; their templates are used."""

    @abstractmethod
    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        """Deliver ``message`` with an account's validated ``settings``.

        Raise ``RetryableError`` (with ``retry_after`` when the provider says), ``TerminalError``
        or ``SkipDelivery``; return a ``SendResult`` on success.
        """

    quota_exhausted_codes: ClassVar[frozenset[str]] = frozenset()
    """Provider codes meaning the recipient has no grants left: the engine zeroes the quota."""

    receipt_ack: ClassVar[dict[str, Any] | None] = None
    """For channels whose provider posts delivery reports: the answer it expects; see parse_receipts."""

    cache: SharedCache | None = None

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        """Decode a delivery-report callback body (only for channels that set ``receipt_ack``);
        ValueError when it is not one."""
        raise NotImplementedError(f"{self.name} takes no delivery reports")

    def quota_key(self, message: OutboundMessage) -> str | None:
        """The consumable per-user grant this send needs (e.g. a mini-program subscription to one
        template), or None. The engine takes one before ``send`` and skips the delivery when none is
        left; it gives the grant back when the send fails for another reason."""
        return None

    def bind(self, cache: SharedCache) -> None:
        """Called by the engine once per process, before any send."""
        self.cache = cache

    @classmethod
    def complete_settings(cls, config: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        """Fill in what an admin may leave out when saving an account (e.g. keys generated on
        first save, kept on later saves); ``stored`` is the account's current config, if any."""
        return config

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most channels hold nothing
        """Release pooled connections; called at shutdown."""
