"""Dedup, frequency caps and throttle as counted windows, and the decision given the counts.

Every counted rule is the same thing: a *window* — a key, how many sends it allows (``max``) and
for how long each send counts (``seconds``). A send takes one *slot* in each window that applies to
it; a slot counts from the moment it was taken for ``seconds`` (a sliding window: "3 per day" means
at most 3 in any 24 hours, never 3 at 23:59 and 3 more at 00:01). Dedup is a window of one slot
keyed by the content; a cap is keyed by type, user, channel (or every channel) and period; the
throttle by type and user.

Slots are held by a delivery id, so a delivery that passes again (a retry, a re-claim after a
crash) finds its own slot and takes no second one. Keys are fixed-length digests of their parts:
user ids and content of any length or character (NUL, lone surrogates) make a key of the same
safe shape, in the database and in Redis alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from herald.core.rules import Cap, SkipReason, TypeRules

ALL_CHANNELS = "*"
"""The channel part of a cap's key when the cap counts every channel of the type together."""


def _digest(parts: Iterable[Any]) -> str:
    """32 hex digits naming ``parts``; JSON with ASCII escapes, so any string (a lone surrogate
    included) hashes, and ["a:b", "c"] never collides with ["a", "b:c"]."""
    encoded = json.dumps(list(parts), ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(encoded.encode("ascii"), digest_size=16).hexdigest()


def content_digest(content: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """What a channel sends, as a digest: its rendered template; for a channel that sends without
    one (a webhook with no template), the trigger's data it carries instead."""
    return _digest([content] if content else [{}, data])


def window_key(rule: str, *parts: Any) -> str:
    return f"{rule}:{_digest([rule, *parts])}"


@dataclass(frozen=True)
class Window:
    """One counted rule as it applies to one send."""

    reason: SkipReason
    """What a send refused by this window is skipped as (dedup, frequency_cap, throttle)."""
    key: str
    max: int
    seconds: int
    detail: str
    """Why a refused send was not sent, in words (the delivery's ``reason_detail``)."""


def dedup_window(seconds: int, user_id: str, channel: str, digest: str) -> Window:
    return Window(
        SkipReason.DEDUP,
        window_key("dedup", user_id, channel, digest),
        1,
        seconds,
        f"the same content was sent to this user on {channel} within the last {seconds} s",
    )


def cap_window(cap: Cap, type_key: str, user_id: str) -> Window:
    channel = cap.channel or ALL_CHANNELS
    on = f"on {cap.channel}" if cap.channel else "on all channels together"
    return Window(
        SkipReason.FREQUENCY_CAP,
        window_key("cap", type_key, user_id, channel, cap.per.value),
        cap.max,
        cap.per.seconds,
        f"frequency cap: at most {cap.max} per user {on} in any {cap.per.seconds} s (per {cap.per.value})",
    )


def throttle_window(max_sends: int, seconds: int, type_key: str, user_id: str) -> Window:
    return Window(
        SkipReason.THROTTLE,
        window_key("throttle", type_key, user_id),
        max_sends,
        seconds,
        f"throttle: at most {max_sends} of this type per user in any {seconds} s",
    )


def windows_for(
    rules: TypeRules, *, type_key: str, user_id: str, channel: str, content: Mapping[str, Any], data: Mapping[str, Any]
) -> tuple[Window, ...]:
    """The windows one send of a type takes a slot in, in the order their reasons are reported:
    dedup, then the caps (this channel's, then all channels'), then the throttle. Two caps with
    the same key (the same channel and period) are one window, at the lower ``max``."""
    windows: list[Window] = []
    if rules.dedup_seconds:
        windows.append(dedup_window(rules.dedup_seconds, user_id, channel, content_digest(content, data)))
    caps = sorted((c for c in rules.caps if c.channel in (None, channel)), key=lambda c: c.channel is None)
    windows.extend(cap_window(cap, type_key, user_id) for cap in caps)
    if rules.throttle is not None:
        windows.append(throttle_window(rules.throttle.max, rules.throttle.window_seconds, type_key, user_id))
    return merge_same_keys(windows)


def merge_same_keys(windows: Sequence[Window]) -> tuple[Window, ...]:
    """One window per key, the strictest (lowest ``max``) kept, in first-seen order."""
    by_key: dict[str, Window] = {}
    for window in windows:
        kept = by_key.get(window.key)
        if kept is None or window.max < kept.max:
            by_key[window.key] = window
    return tuple(by_key.values())


def first_refused(windows: Sequence[Window], taken: Mapping[str, int], held: Collection[str]) -> Window | None:
    """The first window with no room for this send, or None when every one has room.

    ``taken``: live slots per key held by *other* deliveries; ``held``: the keys in which this
    delivery already holds a live slot (it passes again: that slot is its own, never a second)."""
    for window in windows:
        if window.key not in held and taken.get(window.key, 0) >= window.max:
            return window
    return None


def lock_id(key: str) -> int:
    """A signed 64-bit number for ``key`` (PostgreSQL's advisory locks take one)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
