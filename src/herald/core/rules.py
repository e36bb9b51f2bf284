"""The delivery rules a notification type carries, as typed values (issue 8).

A type is stored as a row (``store/catalog.py``); ``TypeRules.of(type_row)`` reads the rules out of
it once, so that every stage and every decision takes typed values and never digs in a dict.
The rules themselves are decided by pure functions elsewhere in ``core/`` (preferences, quiet
hours, frequency, merging, digests); this module only names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class QuietHoursMode(StrEnum):
    """What a type's deliveries do inside a user's quiet hours."""

    DEFER = "defer"
    """Wait, as an ordinary persisted row due at the window's end (the default)."""
    DROP = "drop"
    """Skipped, reason ``quiet_hours``."""
    DELIVER = "deliver"
    """Sent anyway."""


class CapPeriod(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return 3600 if self is CapPeriod.HOUR else 86400


class SkipReason(StrEnum):
    """Why a delivery was not sent (``reason`` of a skipped, expired or cancelled delivery), or why
    a pending one waits (``quiet_hours``, ``rate_limited``). API.md and issue 8 name these."""

    PREFERENCE = "preference"
    QUIET_HOURS = "quiet_hours"
    DEDUP = "dedup"
    FREQUENCY_CAP = "frequency_cap"
    THROTTLE = "throttle"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    MERGED = "merged"
    DIGESTED = "digested"
    NO_SUBSCRIPTION_QUOTA = "no_subscription_quota"
    NO_ADDRESS = "no_address"
    BLOCKED = "blocked"
    # beyond the list: a skip no rule above describes
    NO_ACCOUNT = "no_account"
    """No channel account is configured for the channel."""
    GONE = "gone"
    """Every address the user registered with the channel is gone (an expired push subscription)."""
    PROVIDER_SKIPPED = "provider_skipped"
    """The channel itself decided not to send (it says why in ``reason_detail``)."""
    RATE_LIMITED = "rate_limited"
    """Pending: the provider account's rate limit is spent for now."""


@dataclass(frozen=True)
class Cap:
    """At most ``max`` deliveries per user per ``per`` on ``channel`` (None: all channels together)."""

    channel: str | None
    per: CapPeriod
    max: int


@dataclass(frozen=True)
class Throttle:
    """At most ``max`` deliveries of the type per user per ``window_seconds`` (every channel)."""

    max: int
    window_seconds: int


@dataclass(frozen=True)
class Merge:
    """Events of the type for one user with the same rendered ``key`` within ``window_seconds``
    update one unread inbox item instead of adding one."""

    key: str
    window_seconds: int


@dataclass(frozen=True)
class Digest:
    """Events on ``channels`` are collected per user and sent as one message at the window's end
    or once ``max_items`` are collected."""

    channels: tuple[str, ...]
    window_seconds: int
    max_items: int


@dataclass(frozen=True)
class TypeRules:
    critical: bool = False
    quiet_hours: QuietHoursMode = QuietHoursMode.DEFER
    dedup_seconds: int | None = None
    caps: tuple[Cap, ...] = ()
    throttle: Throttle | None = None
    merge: Merge | None = None
    digest: Digest | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> TypeRules:
        """The rules of a stored type (a ``notification_types`` row or the API's type view)."""
        throttle, merge, digest = row.get("throttle"), row.get("merge"), row.get("digest")
        return cls(
            critical=bool(row.get("critical")),
            quiet_hours=QuietHoursMode(row.get("quiet_hours") or QuietHoursMode.DEFER),
            dedup_seconds=row.get("dedup_seconds") or None,
            caps=tuple(
                Cap(channel=c.get("channel"), per=CapPeriod(c["per"]), max=int(c["max"])) for c in row.get("caps") or ()
            ),
            throttle=Throttle(int(throttle["max"]), int(throttle["window_seconds"])) if throttle else None,
            merge=Merge(str(merge["key"]), int(merge["window_seconds"])) if merge else None,
            digest=(
                Digest(tuple(digest["channels"]), int(digest["window_seconds"]), int(digest["max_items"]))
                if digest
                else None
            ),
        )

    @property
    def limits_sends(self) -> bool:
        """Whether any counted rule (dedup, caps, throttle) applies to the type's sends."""
        return bool(self.dedup_seconds or self.caps or self.throttle)


INAPP = "inapp"


def rule_problems(channels: list[str], rules: TypeRules) -> list[tuple[str, str]]:
    """``(field, why)`` for each rule that cannot apply to a type sending on ``channels``."""
    problems: list[tuple[str, str]] = []
    for i, cap in enumerate(rules.caps):
        if cap.channel is not None and cap.channel not in channels:
            problems.append((f"caps.{i}.channel", f"'{cap.channel}' is not one of the type's channels"))
        elif cap.channel == INAPP:
            problems.append((f"caps.{i}.channel", "the in-app inbox is not capped (caps count sends)"))
    if rules.digest is not None:
        for i, channel in enumerate(rules.digest.channels):
            if channel == INAPP:
                problems.append((f"digest.channels.{i}", "the in-app inbox is not digested (use merge)"))
            elif channel not in channels:
                problems.append((f"digest.channels.{i}", f"'{channel}' is not one of the type's channels"))
        if len(set(rules.digest.channels)) != len(rules.digest.channels):
            problems.append(("digest.channels", "names a channel twice"))
    if rules.merge is not None and INAPP not in channels:
        problems.append(("merge", "merging applies to in-app items: the type has no 'inapp' channel"))
    return problems
