"""Small value objects shared by channels and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """An address a user registered with a channel from a device (a browser's push subscription),
    with the channel's own data about it (the subscription's keys)."""

    address: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A recipient as the business system described them: addresses, locale, timezone, data."""

    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    channels: dict[str, Any] = field(default_factory=dict)
    """Per-channel addresses (``wechat_oa_openid``, ``dingtalk_userid``, …)."""
    data: dict[str, Any] = field(default_factory=dict)
