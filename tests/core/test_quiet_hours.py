"""Quiet hours: inside or not, and when the window ends, in zones far from UTC and across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.core.quiet_hours import inside, is_timezone, parse_clock, window_end

# far from UTC, half- and quarter-hour offsets, DST of 30 minutes, DST at midnight, negative DST,
# a day skipped (Apia 2011, Kiritimati 1994), DST starting from UTC+0 (Troll)
ZONES = [
    "Pacific/Kiritimati",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Pacific/Pago_Pago",
    "America/St_Johns",
    "America/Santiago",
    "America/Nuuk",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Asia/Shanghai",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Antarctica/Troll",
    "UTC",
]


def wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def is_inside(instant: datetime, start: str, end: str, zone: str) -> bool:
    """The oracle: what the user's wall clock reads at that instant, in minutes of the day."""
    reading = wall(instant, zone)
    minute = reading.hour * 60 + reading.minute
    first, last = (int(t[:2]) * 60 + int(t[3:]) for t in (start, end))
    if first == last:
        return False
    return first <= minute < last if first < last else minute >= first or minute < last


@cache
def transitions(zone: str, year: int) -> list[datetime]:
    """The instants (to the hour) at which ``zone`` changed its offset in ``year``."""
    tz = ZoneInfo(zone)
    at = datetime(year, 1, 1, tzinfo=UTC)
    found = []
    previous = at.astimezone(tz).utcoffset()
    while at.year == year:
        at += timedelta(hours=1)
        offset = at.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(at)
            previous = offset
    return found


clocks = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
anywhen = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@st.composite
def near_a_change(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant within a day and a half of one of its offset changes (or anywhen)."""
    zone = draw(st.sampled_from(ZONES))
    year = draw(st.sampled_from([1994, 2011, 2019, 2022, 2024, 2025, 2031]))
    changes = transitions(zone, year)
    if not changes:
        return zone, draw(anywhen)
    change = draw(st.sampled_from(changes))
    return zone, change + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))


def check_end(now: datetime, start: str, end: str, zone: str) -> None:
    result = window_end(now, start, end, zone)
    if not is_inside(now, start, end, zone):
        assert result is None
        return
    assert result is not None and result.tzinfo is not None
    assert now < result <= now + timedelta(hours=52)
    assert not is_inside(result, start, end, zone), "the window has ended at the answer"
    if result - timedelta(seconds=1) >= now:
        assert is_inside(result - timedelta(seconds=1), start, end, zone), "and not a second earlier"
    at = now
    while at < result:  # no earlier way out (a minute at a time)
        assert is_inside(at, start, end, zone), at
        at += timedelta(minutes=1)
    tz = ZoneInfo(zone)
    jumped = (result - timedelta(seconds=1)).astimezone(tz).utcoffset() != result.astimezone(tz).utcoffset()
    assert wall(result, zone).time() == parse_clock(end) or jumped, "the clock reads end, or it jumped out"


@settings(max_examples=300, deadline=None)
@given(near_a_change(), clocks, clocks)
def test_the_window_ends_at_the_first_instant_outside_it_across_offset_changes(
    zoned: tuple[str, datetime], start: str, end: str
) -> None:
    zone, now = zoned
    check_end(now, start, end, zone)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ZONES), anywhen, clocks, clocks)
def test_the_window_ends_at_the_first_instant_outside_it_any_time(
    zone: str, now: datetime, start: str, end: str
) -> None:
    check_end(now, start, end, zone)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ZONES), anywhen, clocks)
def test_start_equal_to_end_is_no_window(zone: str, now: datetime, clock: str) -> None:
    assert window_end(now, clock, clock, zone) is None


def at(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def local(instant: datetime | None, zone: str) -> datetime:
    assert instant is not None
    return instant.astimezone(ZoneInfo(zone))


def test_over_midnight_in_shanghai() -> None:
    zone = "Asia/Shanghai"
    assert window_end(at(zone, 2025, 1, 1, 21, 59), "22:00", "08:00", zone) is None
    assert local(window_end(at(zone, 2025, 1, 1, 22, 0), "22:00", "08:00", zone), zone) == at(zone, 2025, 1, 2, 8, 0)
    assert local(window_end(at(zone, 2025, 1, 2, 3, 0), "22:00", "08:00", zone), zone) == at(zone, 2025, 1, 2, 8, 0)
    assert window_end(at(zone, 2025, 1, 2, 8, 0), "22:00", "08:00", zone) is None


def test_an_end_that_does_not_exist_ends_the_window_at_the_jump() -> None:
    # New York springs forward from 02:00 to 03:00 on 2024-03-10: 02:30 does not exist that night
    zone = "America/New_York"
    end = window_end(at(zone, 2024, 3, 10, 1, 30), "23:00", "02:30", zone)
    assert end == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT, the first instant after 01:59:59 EST
    # Lord Howe springs forward half an hour, 02:00 -> 02:30, on 2024-10-06
    zone = "Australia/Lord_Howe"
    end = window_end(at(zone, 2024, 10, 6, 1, 45), "22:00", "02:15", zone)
    assert local(end, zone).replace(tzinfo=None) == datetime(2024, 10, 6, 2, 30)


def test_an_end_that_occurs_twice_ends_the_window_at_the_first_one_after_now() -> None:
    zone = "America/New_York"  # falls back from 02:00 EDT to 01:00 EST on 2024-11-03
    first = window_end(at(zone, 2024, 11, 3, 1, 10), "00:30", "01:30", zone)
    assert first == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = window_end(at(zone, 2024, 11, 3, 1, 10, fold=1), "00:30", "01:30", zone)
    assert second == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST, an hour later


def test_a_clock_falling_back_out_of_the_window_ends_it_at_the_jump() -> None:
    zone = "America/Santiago"  # 2024-04-07 00:00 -03 falls back to 2024-04-06 23:00 -04
    end = window_end(at(zone, 2024, 4, 6, 23, 30), "23:15", "06:00", zone)
    assert end == datetime(2024, 4, 7, 3, 0, tzinfo=UTC)  # 23:00 -04, before 23:15: outside


def test_a_skipped_day_in_apia() -> None:
    zone = "Pacific/Apia"  # 2011-12-29 23:59:59 -10 was followed by 2011-12-31 00:00 +14
    end = window_end(at(zone, 2011, 12, 29, 23, 0), "22:00", "08:00", zone)
    assert local(end, zone).replace(tzinfo=None) == datetime(2011, 12, 31, 8, 0)


def test_kiritimati_and_st_johns() -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: 22:00 local is 08:00 UTC the day before
    end = window_end(datetime(2025, 6, 1, 9, 0, tzinfo=UTC), "22:00", "07:00", zone)
    assert end == datetime(2025, 6, 1, 17, 0, tzinfo=UTC)
    zone = "America/St_Johns"  # UTC-2:30 in summer
    end = window_end(datetime(2025, 7, 1, 2, 0, tzinfo=UTC), "22:00", "07:00", zone)
    assert end == datetime(2025, 7, 1, 9, 30, tzinfo=UTC)


def test_bad_input_is_refused() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for clock in ("25:00", "7:00", "07:60", "07:00\n", "", "０７:００"):
        assert parse_clock(clock) is None
        with pytest.raises(ValueError):
            window_end(now, clock, "08:00", "UTC")
    with pytest.raises(ValueError):
        window_end(datetime(2025, 1, 1), "22:00", "08:00", "UTC")  # naive
    for name in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "posixrules", "America", "UTC\n", "a\x00b", ""):
        assert not is_timezone(name), name
        with pytest.raises(ValueError):
            window_end(now, "22:00", "08:00", name)
    assert is_timezone("UTC") and is_timezone("Asia/Shanghai") and is_timezone("America/Argentina/Buenos_Aires")


def test_inside_is_half_open() -> None:
    assert inside(time(22, 0), time(22, 0), time(8, 0))
    assert not inside(time(8, 0), time(22, 0), time(8, 0))
    assert inside(time(7, 59, 59), time(22, 0), time(8, 0))
    assert not inside(time(12, 0), time(12, 0), time(12, 0))
