"""Quiet hours (夜间屏蔽): whether an instant falls in a user's nightly window, and when it ends.

The window is a span of local wall-clock times, ``start`` inclusive to ``end`` exclusive, in the
user's IANA timezone; ``22:00``–``08:00`` runs over midnight, and ``start == end`` is no window.
An instant is *inside* when the user's wall clock reads a time in the window at that instant.

``window_end`` answers the first instant after ``now`` at which the wall clock reads a time
outside the window. Most nights that is the moment the clock reads ``end``. Around a change of
UTC offset it need not be:

- ``end`` may not exist that night (spring forward over it, Samoa skipping a whole day): the
  window ends at the jump, or later if the clock lands inside the window again;
- ``end`` may occur twice (fall back): the first one after ``now`` ends the window;
- the clock may fall back from inside the window to before ``start``: the window ends at the jump
  (and starts again when the clock reaches ``start`` a second time).

So the offset changes between ``now`` and the natural end are found (zoneinfo keeps its list of
transitions to itself: they are located by sampling the offset and bisecting to the second, as
the TZif files hold transitions in whole seconds), and the wall clock is followed across each.

Pure: ``zoneinfo`` only, no I/O beyond reading the timezone database it ships with.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
ZONE_NAME = re.compile(r"[A-Z][A-Za-z0-9_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*)*")
MAX_TIMEZONE_LENGTH = 64
SAMPLE = timedelta(minutes=30)
"""How far apart the offset is sampled to find a change (no zone changes its offset twice within it)."""
HORIZON = timedelta(hours=52)
"""No window lasts longer: under 24 hours of wall clock, plus at most a day skipped by a jump."""


def parse_clock(value: object) -> time | None:
    """``"HH:MM"`` (00:00–23:59) as a time, or None when it is not one."""
    match = CLOCK.fullmatch(value) if isinstance(value, str) else None
    return time(int(match[1]), int(match[2])) if match else None


def is_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA timezone name (``Asia/Shanghai``, ``UTC``) this system has.

    Checked by loading it (zoneinfo caches zones), not against ``available_timezones()``, which
    walks the whole database (~90 ms) and would cost every start that validates the settings. The
    form is checked first: capitalised names only, so no path tricks and none of the database's
    own files (``posixrules``, ``localtime``, ``right/…``)."""
    if not isinstance(name, str) or len(name) > MAX_TIMEZONE_LENGTH or not ZONE_NAME.fullmatch(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def timezone(name: str) -> ZoneInfo:
    """The zone named ``name``; ValueError when it is not a known IANA name."""
    if not is_timezone(name):
        raise ValueError(f"not an IANA timezone name: {name[:MAX_TIMEZONE_LENGTH]!r}")
    return ZoneInfo(name)


def inside(wall: time, start: time, end: time) -> bool:
    """Whether the wall-clock time ``wall`` lies in the window ``[start, end)``."""
    if start == end:
        return False
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end  # over midnight


def window_end(now: datetime, start: str, end: str, zone: str | tzinfo) -> datetime | None:
    """None when ``now`` (aware) is outside the window ``start``–``end`` (``"HH:MM"``) in ``zone``;
    else the first instant after it that is outside, in UTC. ValueError for a bad clock or zone."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    first, last = parse_clock(start), parse_clock(end)
    if first is None or last is None:
        raise ValueError(f"quiet hours are HH:MM times, not {start!r}–{end!r}")
    tz = timezone(zone) if isinstance(zone, str) else zone
    at = now.astimezone(UTC)
    if not inside(_wall(at, tz).time(), first, last):
        return None
    horizon = at + HORIZON
    while at < horizon:
        natural = at + _until(_wall(at, tz), last)  # the clock reaches ``end`` if the offset holds
        change = _next_offset_change(at, min(natural, horizon), tz)
        if change is None:
            return natural
        if not inside(_wall(change, tz).time(), first, last):
            return change  # the clock jumped out of the window
        at = change  # it jumped and is still inside: follow it from there
    return horizon  # unreachable with real zones; a bound all the same


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    """The naive local wall-clock reading of a UTC instant."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _until(wall: datetime, end: time) -> timedelta:
    """How long until a clock now reading ``wall`` next reads ``end`` (strictly later), if it runs on."""
    day: date = wall.date() if wall.time() < end else wall.date() + timedelta(days=1)
    return datetime.combine(day, end) - wall


def _offset(instant: datetime, tz: tzinfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _next_offset_change(after: datetime, until: datetime, tz: tzinfo) -> datetime | None:
    """The first instant in ``(after, until]`` at which ``tz``'s UTC offset differs from its offset
    at ``after``, to the second; None when it holds all the way."""
    before = _offset(after, tz)
    low = after
    while low < until:
        high = min(low + SAMPLE, until)
        if _offset(high, tz) != before:
            return _bisect_change(low, high, before, tz)
        low = high
    return None


def _bisect_change(low: datetime, high: datetime, before: timedelta | None, tz: tzinfo) -> datetime:
    """The first whole second in ``(low, high]`` with an offset other than ``before`` (known at ``low``)."""
    lo = math.floor(low.timestamp())  # transitions fall on whole seconds: flooring stays before one
    hi = math.ceil(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, UTC), tz) == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
