"""A user's delivery preferences as typed values, their validation, and the decisions taken on them.

The document (``GET``/``PUT /v1/me/preferences``)::

    {"channels":   {"email": false},
     "categories": {"marketing": {"enabled": false}, "reminder": {"channels": {"sms": false}}},
     "types":      {"comment.created": {"enabled": false}, "order.shipped": {"channels": {"email": false}}},
     "quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "Asia/Shanghai"}}

The most specific setting wins: type × channel > type > category × channel > category > channel;
a setting left out means allowed (the type's own channels decide). The in-app inbox is the
channel ``inapp`` like any other. Critical types bypass preferences and quiet hours altogether:
that is the caller's check (``TypeRules.critical``), so that a critical delivery costs nothing here.

Pure: no I/O. ``null`` anywhere in the document means "not set".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.core.outcomes import Outcome
from herald.core.quiet_hours import is_timezone, parse_clock, window_end
from herald.core.rules import QuietHoursMode, SkipReason, TypeRules

INAPP = "inapp"
MAX_TYPES = 1000
"""Type settings one document may hold."""
TYPE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
SECTIONS = ("channels", "categories", "types", "quiet_hours")


@dataclass(frozen=True)
class Choice:
    """The settings of one category or one type: on or off as a whole, and per channel."""

    enabled: bool | None = None
    channels: Mapping[str, bool] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.enabled is not None:
            out["enabled"] = self.enabled
        if self.channels:
            out["channels"] = dict(sorted(self.channels.items()))
        return out

    def decides(self, channel: str) -> bool | None:
        """This level's answer for ``channel``: its channel setting, else its own switch, else None."""
        value = self.channels.get(channel)
        return value if value is not None else self.enabled


@dataclass(frozen=True)
class QuietHours:
    start: str
    """``HH:MM``, local wall-clock time."""
    end: str
    timezone: str | None = None
    """IANA name; None: the user's profile timezone, else the deployment's default."""

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "timezone": self.timezone}


@dataclass(frozen=True)
class Preferences:
    channels: Mapping[str, bool] = field(default_factory=dict)
    categories: Mapping[str, Choice] = field(default_factory=dict)
    types: Mapping[str, Choice] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None

    def as_json(self) -> dict[str, Any]:
        """The document as stored and shown: every section present, empty choices left out."""
        return {
            "channels": dict(sorted(self.channels.items())),
            "categories": {k: c.as_json() for k, c in sorted(self.categories.items()) if c.as_json()},
            "types": {k: c.as_json() for k, c in sorted(self.types.items()) if c.as_json()},
            "quiet_hours": self.quiet_hours.as_json() if self.quiet_hours else None,
        }


NO_PREFERENCES = Preferences()


def turned_off(prefs: Preferences, type_key: str, channel: str) -> Preferences:
    """``prefs`` with ``type_key`` off on ``channel`` (the most specific setting there is), the
    rest as it was: what a one-click unsubscribe does."""
    choice = prefs.types.get(type_key, Choice())
    changed = Choice(choice.enabled, {**choice.channels, channel: False})
    return Preferences(prefs.channels, prefs.categories, {**prefs.types, type_key: changed}, prefs.quiet_hours)


def allowed(prefs: Preferences, category: str, type_key: str, channel: str) -> bool:
    """Whether ``prefs`` let a (non-critical) notification of ``type_key`` in ``category`` reach
    ``channel``: the most specific setting that says anything decides; none says: allowed."""
    for level in (prefs.types.get(type_key), prefs.categories.get(category)):
        if level is not None and (decided := level.decides(channel)) is not None:
            return decided
    return prefs.channels.get(channel, True)


# -- the in-app index -------------------------------------------------------------------------------
#
# At trigger time the in-app decision is needed for every recipient, before their inbox items are
# written, without reading and parsing whole documents. So each document is also kept as a few
# (scope, enabled) rows, written only for users who turned the inbox off somewhere:
# "category:<c>" → False for each category whose in-app answer is off, and "type:<key>" → the
# answer of each type that settles it itself. A type's row, if any, decides; else its category's.


def inapp_choices(prefs: Preferences, categories: Collection[str]) -> dict[str, bool]:
    """``{scope: enabled}`` rows of ``prefs`` for the in-app index, ``categories`` being every
    category a type may have; empty when the inbox is on for every type."""
    rows: dict[str, bool] = {}
    for category in categories:
        level = prefs.categories.get(category)
        decided = level.decides(INAPP) if level is not None else None
        if not (decided if decided is not None else prefs.channels.get(INAPP, True)):
            rows[f"category:{category}"] = False
    for key, choice in prefs.types.items():
        if (decided := choice.decides(INAPP)) is not None:
            rows[f"type:{key}"] = decided
    if all(rows.values()):  # every row says "on": nothing is off anywhere
        return {}
    return rows


def inapp_scopes(category: str, type_key: str) -> tuple[str, str]:
    """The index scopes that decide the in-app answer for a type: its own, then its category's."""
    return f"type:{type_key}", f"category:{category}"


def inapp_off(choices: Mapping[str, bool], category: str, type_key: str) -> bool:
    """Whether a user's in-app index rows turn the inbox off for ``type_key`` in ``category``."""
    own, of_category = inapp_scopes(category, type_key)
    if own in choices:
        return not choices[own]
    return choices.get(of_category) is False


# -- the worker's decision ------------------------------------------------------------------------------


def delivery_outcome(
    prefs: Preferences,
    rules: TypeRules,
    *,
    category: str,
    type_key: str,
    channel: str,
    now: datetime,
    timezone: str,
    expires_at: datetime | None,
) -> Outcome | None:
    """What the user's preferences and quiet hours make of a delivery: None to go on, else the
    outcome that ends it (suppressed) or puts it back until the window ends (deferred).
    ``timezone``: the one quiet hours are kept in (checked by the caller, see ``quiet_timezone``)."""
    if rules.critical:
        return None
    if not allowed(prefs, category, type_key, channel):
        return Outcome.suppressed(SkipReason.PREFERENCE, f"the user turned off {channel} for {type_key}")
    quiet = prefs.quiet_hours
    if quiet is None or rules.quiet_hours is QuietHoursMode.DELIVER:
        return None
    until = window_end(now, quiet.start, quiet.end, timezone)
    if until is None:
        return None
    where = f"quiet hours {quiet.start}–{quiet.end} ({timezone})"
    if rules.quiet_hours is QuietHoursMode.DROP:
        return Outcome.suppressed(SkipReason.QUIET_HOURS, f"dropped: inside the user's {where}")
    if expires_at is not None and until > expires_at:
        return Outcome.suppressed(
            SkipReason.EXPIRED, f"expires at {expires_at.isoformat()}, before the user's {where} end"
        )
    return Outcome.deferred(until, SkipReason.QUIET_HOURS, f"held until {until.isoformat()}: the user's {where}")


def quiet_timezone(prefs: Preferences, profile_timezone: str | None, default: str) -> str:
    """The timezone a user's quiet hours are kept in: the one they name, else the user's
    profile's, else the deployment's default (a name this system does not know is passed over)."""
    for name in (prefs.quiet_hours.timezone if prefs.quiet_hours else None, profile_timezone):
        if name and is_timezone(name):
            return name
    return default


# -- reading a document ----------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.errors.append((where, message))


def parse_preferences(
    document: Any, *, channels: Collection[str], categories: Collection[str]
) -> tuple[Preferences, list[tuple[str, str]]]:
    """A document as sent by a client: the preferences and ``(field, why)`` for each problem
    (unknown channels and categories, bad times, a bad timezone, wrong types, unknown fields).
    Type keys are checked for their form only: a type deleted later must not make a saved
    document unsavable."""
    problems = _Problems()
    if not isinstance(document, Mapping):
        return NO_PREFERENCES, [("body", "must be a JSON object")]
    for key in document:
        if key not in SECTIONS:
            problems.add(str(key) or "body", f"unknown field {key!r}; a preferences document has {', '.join(SECTIONS)}")
    prefs = Preferences(
        channels=_switches(document.get("channels"), "channels", channels, problems),
        categories=_choices(document.get("categories"), "categories", channels, problems, categories=categories),
        types=_choices(document.get("types"), "types", channels, problems, categories=None),
        quiet_hours=_quiet_hours(document.get("quiet_hours"), problems),
    )
    return prefs, problems.errors


def _object(value: Any, where: str, problems: _Problems) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(where, "must be an object")
        return {}
    return value


def _switches(value: Any, where: str, channels: Collection[str], problems: _Problems) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for name, on in _object(value, where, problems).items():
        if name not in channels:
            problems.add(f"{where}.{name}", f"unknown channel '{name}'")
        elif on is None:
            continue
        elif not isinstance(on, bool):
            problems.add(f"{where}.{name}", "must be true or false")
        else:
            out[name] = on
    return out


def _choices(
    value: Any, where: str, channels: Collection[str], problems: _Problems, *, categories: Collection[str] | None
) -> dict[str, Choice]:
    entries = _object(value, where, problems)
    if categories is None and len(entries) > MAX_TYPES:
        problems.add(where, f"at most {MAX_TYPES} types")
        return {}
    out: dict[str, Choice] = {}
    for key, raw in entries.items():
        at = f"{where}.{key}"
        if categories is not None and key not in categories:
            problems.add(at, f"unknown category '{key}' (one of {', '.join(categories)})")
            continue
        if categories is None and not TYPE_KEY.fullmatch(key):
            problems.add(at, "not a notification type key (letters, digits and . _ : -, at most 200)")
            continue
        choice = _choice(raw, at, channels, problems)
        if choice is not None:
            out[key] = choice
    return out


def _choice(value: Any, where: str, channels: Collection[str], problems: _Problems) -> Choice | None:
    entry = _object(value, where, problems)
    for key in entry:
        if key not in ("enabled", "channels"):
            problems.add(f"{where}.{key}", "unknown field; a setting has enabled and channels")
    enabled = entry.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        problems.add(f"{where}.enabled", "must be true or false")
        enabled = None
    switches = _switches(entry.get("channels"), f"{where}.channels", channels, problems)
    return Choice(enabled, switches) if enabled is not None or switches else None


def _quiet_hours(value: Any, problems: _Problems) -> QuietHours | None:
    if value is None:
        return None
    entry = _object(value, "quiet_hours", problems)
    if not entry and isinstance(value, Mapping):
        problems.add("quiet_hours", "give start and end (HH:MM), or null for none")
        return None
    for key in entry:
        if key not in ("start", "end", "timezone"):
            problems.add(f"quiet_hours.{key}", "unknown field; quiet hours have start, end and timezone")
    times = []
    for key in ("start", "end"):
        raw = entry.get(key)
        if raw is None:
            problems.add(f"quiet_hours.{key}", "required: a local time HH:MM")
        elif parse_clock(raw) is None:
            problems.add(f"quiet_hours.{key}", f"not a time of day HH:MM (00:00–23:59): {str(raw)[:20]!r}")
        else:
            times.append(raw)
    zone = entry.get("timezone")
    if zone is not None and not (isinstance(zone, str) and is_timezone(zone)):
        problems.add("quiet_hours.timezone", f"not an IANA timezone name (e.g. Asia/Shanghai): {str(zone)[:64]!r}")
        zone = None
    if len(times) != 2:
        return None
    return QuietHours(times[0], times[1], zone)


def stored_preferences(document: Any) -> Preferences:
    """A document as stored, checked when it was saved: read leniently (a channel uninstalled
    since is kept; anything malformed is passed over rather than failing a delivery)."""
    if not isinstance(document, Mapping):
        return NO_PREFERENCES
    quiet = document.get("quiet_hours")
    hours = None
    if isinstance(quiet, Mapping) and parse_clock(quiet.get("start")) and parse_clock(quiet.get("end")):
        zone = quiet.get("timezone")
        hours = QuietHours(quiet["start"], quiet["end"], zone if isinstance(zone, str) else None)
    return Preferences(
        channels=_stored_switches(document.get("channels")),
        categories=_stored_choices(document.get("categories")),
        types=_stored_choices(document.get("types")),
        quiet_hours=hours,
    )


def _stored_switches(value: Any) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, bool)}


def _stored_choices(value: Any) -> dict[str, Choice]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, Choice] = {}
    for key, raw in value.items():
        if isinstance(raw, Mapping):
            enabled = raw.get("enabled")
            switches = _stored_switches(raw.get("channels"))
            out[str(key)] = Choice(enabled if isinstance(enabled, bool) else None, switches)
    return out
