"""Recurring schedules: when a cron expression fires in a timezone, and what a run after downtime sends.

Cron expressions are croniter's (a well-kept parser and iterator, DST-aware with aware datetimes),
limited to the five classic fields (minute hour day-of-month month day-of-week) or one of the
``@daily``-style macros: no seconds field, so nothing fires more often than once a minute.

Times go in and out as aware UTC datetimes; the expression is evaluated on the wall clock of the
schedule's timezone. Across DST changes it does what cron does:

- spring forward: a time in the skipped hour (02:30 in New York on the March change) fires once, at
  the first instant after the gap (03:00 local);
- fall back: a fixed time in the repeated hour (``30 1 * * *``) fires once, at its first
  instance; an expression whose hour field is a wildcard or step (``*/15 * * * *``) follows real
  time and fires in both instances of the hour.

croniter (and dateutil under it, ~50 ms) is imported on first use: a server that has no schedule
never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MAX_CRON_LENGTH = 100
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
FIELDS = 5
MISSED_COUNT_LIMIT = 1000
"""Counting the occurrences skipped by one outage stops here (an every-minute schedule down for a
week missed 10,080: the count says "at least 1,000")."""
_HOURLY_MACROS = ("@hourly",)


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` cannot be a schedule's cron expression, or None when it can."""
    from croniter import CroniterBadDateError, CroniterError, croniter

    text = expression.strip()
    if not text:
        return "must not be empty"
    if len(text) > MAX_CRON_LENGTH:
        return f"at most {MAX_CRON_LENGTH} characters"
    if text.startswith("@"):
        if text.lower() not in MACROS:
            return f"unknown macro {text!r}; use five fields or one of {', '.join(MACROS)}"
    elif len(text.split()) != FIELDS:
        return (
            "use five fields: minute hour day-of-month month day-of-week (no seconds or years field: a schedule "
            "fires at most once a minute)"
        )
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        return "never fires (no such date, e.g. 30 February)"
    except (CroniterError, ValueError, KeyError, IndexError, OverflowError) as exc:
        return f"not a valid cron expression: {exc}"
    return None


@dataclass(frozen=True)
class Cron:
    """A checked cron expression (``cron_problem`` is None) on the wall clock of ``zone``."""

    expression: str
    zone: ZoneInfo

    @property
    def fixed_hour(self) -> bool:
        """Its hour field names hours (``9``, ``8-18``) rather than every hour or a step (``*``, ``*/2``):
        then a wall time repeated by a fall-back change fires only at its first instance."""
        text = self.expression.strip()
        if text.startswith("@"):
            return text.lower() not in _HOURLY_MACROS
        return "*" not in text.split()[1]

    def _skipped(self, moment: datetime) -> bool:
        """The second instance of a repeated wall time, for an expression with a fixed hour."""
        if not self.fixed_hour:
            return False
        local = moment.astimezone(self.zone)
        return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment``."""
        from croniter import croniter

        it = croniter(self.expression.strip(), moment.astimezone(self.zone))
        while True:
            candidate = it.get_next(datetime).astimezone(UTC)
            if candidate > moment and not self._skipped(candidate):
                return candidate

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last occurrence at or before ``moment``."""
        from croniter import croniter

        it = croniter(self.expression.strip(), moment.astimezone(self.zone))
        previous = it.get_prev(datetime).astimezone(UTC)
        while self._skipped(previous):
            previous = it.get_prev(datetime).astimezone(UTC)
        following = self.next_after(previous)
        return following if following <= moment else previous

    def count_from(self, start: datetime, end: datetime) -> int:
        """Occurrences in ``[start, end)``, ``start`` counted as one (it is the schedule's due
        occurrence); at most ``MISSED_COUNT_LIMIT``."""
        count = 0
        at = start
        while at < end and count < MISSED_COUNT_LIMIT:
            count += 1
            at = self.next_after(at)
        return count


@dataclass(frozen=True)
class Run:
    """What one run of a schedule does."""

    occurrence: datetime | None
    """The occurrence to send now; None when nothing is due yet, or the latest one is too old."""
    next_run_at: datetime
    missed: int
    """Occurrences passed over unsent: the ones before the latest after downtime, and the latest
    itself when it is older than the catch-up window."""


def plan_run(cron: Cron, due: datetime, now: datetime, catch_up: timedelta) -> Run:
    """The run of a schedule due at ``due`` (its ``next_run_at``), made at ``now``.

    On time (or a little late), ``due`` itself is sent. After downtime, only the most recent
    occurrence at or before ``now`` is sent, once, and only if it is at most ``catch_up`` old;
    every earlier one missed is skipped, never sent in a burst. The next run is the first
    occurrence after ``now``.
    """
    if now < due:
        return Run(None, due, 0)
    latest = max(due, cron.latest_at_or_before(now))
    missed = cron.count_from(due, latest)
    next_run_at = cron.next_after(now)
    if now - latest > catch_up:
        return Run(None, next_run_at, min(MISSED_COUNT_LIMIT, missed + 1))
    return Run(latest, next_run_at, missed)
