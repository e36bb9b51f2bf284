"""Cron expressions on a timezone's wall clock, across DST changes, and what a run after downtime sends."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.core.schedules import MISSED_COUNT_LIMIT, Cron, cron_problem, plan_run

NEW_YORK = ZoneInfo("America/New_York")
# far from UTC both ways, 30- and 45-minute offsets, a 30-minute DST shift, DST in the southern
# hemisphere, and Dublin's "negative" DST
ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",
    "Asia/Shanghai",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "America/Santiago",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Chatham",
]
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


# -- checking an expression ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    ["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 9 * * MON-FRI", "0 0 L * *", "@daily", "@hourly", " 0 9 * * * "],
)
def test_good_expressions(expression: str) -> None:
    assert cron_problem(expression) is None


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("", "empty"),
        ("* * * * * *", "five fields"),  # a seconds field: more often than once a minute
        ("0 0 * * * 2027", "five fields"),
        ("0 9 * *", "five fields"),
        ("@reboot", "unknown macro"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("H * * * *", "not a valid cron expression"),
        ("*/0 * * * *", "not a valid cron expression"),
        ("x" * 101, "at most 100"),
    ],
)
def test_bad_expressions_say_why(expression: str, words: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None and words in problem


@settings(max_examples=300, deadline=None)
@given(
    expression=st.text(max_size=40)
    | st.lists(st.sampled_from(["*", "0", "1-5", "*/2", "L", "#", "?", "a"]), max_size=7).map(" ".join)
)
def test_any_text_is_accepted_or_refused_never_raises(expression: str) -> None:
    problem = cron_problem(expression)
    if problem is None:  # an accepted expression can be iterated
        Cron(expression.strip(), NEW_YORK).next_after(utc(2027, 1, 1))


# -- DST --------------------------------------------------------------------------------------------


def test_spring_forward_a_time_in_the_skipped_hour_fires_once_after_the_gap() -> None:
    cron = Cron("30 2 * * *", NEW_YORK)  # 2027-03-14: 02:00 EST becomes 03:00 EDT
    first = cron.next_after(utc(2027, 3, 13, 12))
    assert first == utc(2027, 3, 14, 7) and local(first, NEW_YORK).hour == 3  # 03:00 EDT
    assert cron.next_after(first) == utc(2027, 3, 15, 6, 30)  # 02:30 EDT again the next day
    assert cron.latest_at_or_before(utc(2027, 3, 14, 8)) == first


def test_fall_back_a_fixed_time_in_the_repeated_hour_fires_once() -> None:
    cron = Cron("30 1 * * *", NEW_YORK)  # 2027-11-07: 01:00-02:00 happens twice
    first = cron.next_after(utc(2027, 11, 6, 12))
    assert first == utc(2027, 11, 7, 5, 30)  # 01:30 EDT, the first instance
    assert cron.next_after(first) == utc(2027, 11, 8, 6, 30)  # not 01:30 EST the same night
    assert cron.latest_at_or_before(utc(2027, 11, 7, 7)) == first


def test_fall_back_a_wildcard_hour_follows_real_time() -> None:
    cron = Cron("*/30 * * * *", NEW_YORK)
    at = utc(2027, 11, 7, 4, 50)
    runs = []
    for _ in range(5):
        at = cron.next_after(at)
        runs.append(at)
    # 01:00 and 01:30 EDT, then 01:00 and 01:30 EST, then 02:00 EST
    assert runs == [utc(2027, 11, 7, h, m) for h, m in [(5, 0), (5, 30), (6, 0), (6, 30), (7, 0)]]


def _exists(day: date, hour: int, minute: int, zone: ZoneInfo) -> bool:
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45, 59]),
    start=instants,
)
def test_a_daily_time_fires_once_a_local_day_at_that_time_or_just_after_a_gap(
    zone_name: str, hour: int, minute: int, start: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    cron = Cron(f"{minute} {hour} * * *", zone)
    runs = [cron.next_after(start)]
    for _ in range(3):
        runs.append(cron.next_after(runs[-1]))
    days = [local(r, zone).date() for r in runs]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days)), runs
    assert runs[0] > start
    for run, day in zip(runs, days, strict=True):
        wall = local(run, zone)
        if _exists(day, hour, minute, zone):
            assert (wall.hour, wall.minute) == (hour, minute)
        else:  # in a spring-forward gap: the first instant after it, within the shift (at most an hour)
            skipped_to = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            assert timedelta(0) < run - skipped_to.astimezone(UTC) + timedelta(hours=1) <= timedelta(hours=1)


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    expression=st.sampled_from(["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 */3 * * *", "45 1 * * 0", "@daily"]),
    at=instants,
)
def test_latest_and_next_bracket_any_moment(zone_name: str, expression: str, at: datetime) -> None:
    cron = Cron(expression, ZoneInfo(zone_name))
    latest = cron.latest_at_or_before(at)
    following = cron.next_after(at)
    assert latest <= at < following
    assert cron.next_after(latest) == following  # nothing fires between them


# -- catch-up ---------------------------------------------------------------------------------------

HOURLY = Cron("0 * * * *", ZoneInfo("Asia/Shanghai"))


def test_on_time_sends_the_due_occurrence() -> None:
    run = plan_run(HOURLY, utc(2027, 1, 1, 9), utc(2027, 1, 1, 9, 0, 1), timedelta(hours=1))
    assert run.occurrence == utc(2027, 1, 1, 9) and run.next_run_at == utc(2027, 1, 1, 10) and run.missed == 0


def test_early_sends_nothing_and_stays_due() -> None:
    run = plan_run(HOURLY, utc(2027, 1, 1, 9), utc(2027, 1, 1, 8, 59), timedelta(hours=1))
    assert run.occurrence is None and run.next_run_at == utc(2027, 1, 1, 9) and run.missed == 0


def test_after_downtime_only_the_latest_occurrence_is_sent() -> None:
    run = plan_run(HOURLY, utc(2027, 1, 1, 9), utc(2027, 1, 1, 14, 20), timedelta(hours=1))
    assert run.occurrence == utc(2027, 1, 1, 14)  # not 9, 10, 11, 12 and 13 in a burst
    assert run.missed == 5 and run.next_run_at == utc(2027, 1, 1, 15)


def test_after_downtime_an_occurrence_older_than_the_window_is_skipped() -> None:
    daily = Cron("0 9 * * *", ZoneInfo("Asia/Shanghai"))  # 01:00 UTC
    run = plan_run(daily, utc(2027, 1, 1, 1), utc(2027, 1, 3, 4), timedelta(hours=1))
    assert run.occurrence is None and run.missed == 3 and run.next_run_at == utc(2027, 1, 4, 1)


def test_the_missed_count_stops_at_its_limit() -> None:
    every_minute = Cron("* * * * *", ZoneInfo("UTC"))
    run = plan_run(every_minute, utc(2027, 1, 1), utc(2027, 1, 8), timedelta(hours=1))
    assert run.occurrence == utc(2027, 1, 8) and run.missed == MISSED_COUNT_LIMIT


@settings(max_examples=300, deadline=None)
@given(
    expression=st.sampled_from(["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 0 1 * *"]),
    zone_name=st.sampled_from(ZONES),
    created=instants,
    down=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
    window=st.integers(60, 7 * 24 * 3600).map(lambda s: timedelta(seconds=s)),
)
def test_a_run_sends_at_most_the_latest_occurrence_within_the_window(
    expression: str, zone_name: str, created: datetime, down: timedelta, window: timedelta
) -> None:
    cron = Cron(expression, ZoneInfo(zone_name))
    due = cron.next_after(created)
    now = due + down
    run = plan_run(cron, due, now, window)
    latest = cron.latest_at_or_before(now)
    assert run.next_run_at > now and run.next_run_at == cron.next_after(now)
    if now - latest <= window:
        assert run.occurrence == latest
    else:
        assert run.occurrence is None
    sent = 0 if run.occurrence is None else 1
    assert sent + run.missed >= 1  # the due occurrence is either sent or counted missed
