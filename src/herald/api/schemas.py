"""Request bodies. Responses are plain dicts shaped as API.md writes them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from herald.core.actions import ACTION_ID_PATTERN, MAX_ACTIONS, MAX_LABEL, MAX_LABEL_LOCALES, MAX_REASON
from herald.core.enums import AnnouncementKind, Category, ContentType, Priority
from herald.core.inputs import check_instant
from herald.core.links import checked_link
from herald.core.rules import CapPeriod, QuietHoursMode

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Locale = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
_TIMEZONES: set[str] | None = None
Instant = Annotated[AwareDatetime, AfterValidator(check_instant)]
"""A moment with an offset, in UTC, within years 1970..9000 (``9999-12-31T23:59:59-23:59`` is not)."""


def _check_timezone(value: str | None) -> str | None:
    global _TIMEZONES
    if value is None:
        return None
    if _TIMEZONES is None:
        _TIMEZONES = available_timezones()
    if value not in _TIMEZONES and value != "UTC":
        raise ValueError("not an IANA time zone name")
    return value


def _check_email(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError("not an email address")
    return value


def nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL character, or None.

    PostgreSQL stores no NUL in text or jsonb, so such input must be refused up front, on every backend.
    """
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, sub in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = nul_path(sub, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, sub in enumerate(value):
            found = nul_path(sub, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        where = nul_path(value)
        if where is not None:
            raise ValueError(f"contains a NUL character{f' (at {where})' if where else ''}")
        return value


class UserIn(Strict):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    email: Annotated[str | None, AfterValidator(_check_email)] = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{3,32}$")] | None = None
    locale: Locale | None = None
    timezone: Annotated[str | None, AfterValidator(_check_timezone)] = None
    channels: dict[str, Any] | None = None
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=100
    )
    data: dict[str, Any] | None = None


class InlineRecipient(UserIn):
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenIn(Strict):
    expires_in: int = Field(default=3600, ge=60, le=90 * 24 * 3600)


ChannelKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
AccountChoice = dict[ChannelKey, Annotated[list[Key], Field(min_length=1, max_length=20)]]
"""``{channel: [account name, ...]}``: the accounts to send each channel with."""


class CapIn(Strict):
    channel: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    """None: every channel of the type together."""
    per: CapPeriod
    max: int = Field(ge=1, le=1_000_000)


class ThrottleIn(Strict):
    max: int = Field(ge=1, le=1_000_000)
    window_seconds: int = Field(ge=1, le=31 * 24 * 3600)


class MergeIn(Strict):
    key: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    """A ``${var}`` template over the trigger's data, e.g. ``${post.id}``."""
    window_seconds: int = Field(ge=1, le=31 * 24 * 3600)


class DigestIn(Strict):
    channels: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(min_length=1, max_length=20)
    window_seconds: int = Field(ge=1, le=31 * 24 * 3600)
    max_items: int = Field(default=50, ge=1, le=1000)


class NotificationTypeIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    names: dict[Locale, Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=50
    )
    """``{locale: name}``: the type's name per locale, for settings pages (``name`` otherwise)."""
    category: Category = Category.REMINDER
    priority: Priority = Priority.NORMAL
    channels: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=lambda: ["inapp"]
    )
    critical: bool = False
    ttl_seconds: int | None = Field(default=None, ge=1, le=365 * 24 * 3600)
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    accounts: AccountChoice | None = None
    quiet_hours: QuietHoursMode = QuietHoursMode.DEFER
    dedup_seconds: int | None = Field(default=None, ge=1, le=31 * 24 * 3600)
    caps: list[CapIn] = Field(default_factory=list, max_length=20)
    throttle: ThrottleIn | None = None
    merge: MergeIn | None = None
    digest: DigestIn | None = None


class TemplateIn(BaseModel):
    """``title, summary, body, action_url, actions`` plus any channel fields; strings are ``${var}`` templates."""

    model_config = ConfigDict(extra="allow")
    title: str | None = None
    summary: str | None = None
    body: str | None = None


class PreviewIn(Strict):
    type: Key
    channel: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    locale: Locale | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class AudienceIn(Strict):
    all: bool | None = None
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1
    )

    def as_dict(self) -> dict[str, Any]:
        if self.all:
            return {"all": True}
        if self.tags:
            return {"tags": self.tags}
        raise ValueError("audience needs all: true or a non-empty tags list")


ActionLabelText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL)]


class ActionIn(Strict):
    """A button on the recipient's inbox item: with an ``id``, an answer the user gives (``POST
    /v1/me/inbox/{item_id}/actions/{id}``); without one, a link that opens ``url``."""

    id: Annotated[str, StringConstraints(pattern=ACTION_ID_PATTERN)] | None = None
    label: ActionLabelText | Annotated[dict[Locale, ActionLabelText], Field(min_length=1, max_length=MAX_LABEL_LOCALES)]
    """Text, or text per locale (``{"zh-CN": "确认", "en": "Confirm"}``): each item shows its recipient's."""
    requires_reason: bool = False
    url: Annotated[str, StringConstraints(max_length=2000), AfterValidator(checked_link)] | None = None
    style: Literal["default", "primary", "danger"] | None = None


class ActionAnswerIn(Strict):
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None


class TriggerIn(Strict):
    type: Key
    to: list[Annotated[str, StringConstraints(min_length=1, max_length=200)] | InlineRecipient] | None = None
    audience: AudienceIn | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    actor: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    send_at: Instant | None = None
    expires_at: Instant | None = None
    channels: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] | None = None
    accounts: AccountChoice | None = None
    actions: list[ActionIn] | None = Field(default=None, max_length=MAX_ACTIONS)
    """Replace the in-app template's ``actions`` on every recipient's item (``[]``: none)."""
    cancellation_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    """``POST /v1/notifications/cancel`` with this key cancels what is unsent of every notification carrying it."""


class CancelByKeyIn(Strict):
    cancellation_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ScheduleIn(Strict):
    """A recurring send (api/schedules.py): the cron expression, checked with the trigger when created."""

    cron: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_check_timezone)]
    trigger: TriggerIn
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    catch_up_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """After downtime the latest missed occurrence is sent if at most this old (core/schedules.py)."""


class AnnouncementIn(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    summary: Annotated[str, StringConstraints(max_length=2000)] | None = None
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    kind: AnnouncementKind = AnnouncementKind.NOTICE
    content_type: ContentType = ContentType.TEXT
    media_url: Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://")] | None = None
    action_url: Annotated[str, StringConstraints(max_length=2000), AfterValidator(checked_link)] | None = None
    data: dict[str, Any] | None = None
    audience: AudienceIn = Field(default_factory=lambda: AudienceIn(all=True))
    starts_at: Instant | None = None
    ends_at: Instant | None = None


class AnnouncementPatch(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    summary: Annotated[str, StringConstraints(max_length=2000)] | None = None
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    kind: AnnouncementKind | None = None
    content_type: ContentType | None = None
    media_url: Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://")] | None = None
    action_url: Annotated[str, StringConstraints(max_length=2000), AfterValidator(checked_link)] | None = None
    data: dict[str, Any] | None = None
    audience: AudienceIn | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None


class ReadAllIn(Strict):
    category: Category | None = None


class ChannelAccountIn(Strict):
    channel: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    config: dict[str, Any] = Field(default_factory=dict)
    default: bool = False
    group: Key | None = None
    """Routing group: accounts of one group are interchangeable, a retry may fail over between them."""


def rfc3339(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


StatusFilter = Literal["unread", "read", "all"]
