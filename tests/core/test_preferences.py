"""Preferences: the precedence of settings, the in-app index, validation, and the worker's decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from herald.core.enums import Category, DeliveryStatus
from herald.core.preferences import (
    NO_PREFERENCES,
    Choice,
    Preferences,
    QuietHours,
    allowed,
    delivery_outcome,
    inapp_choices,
    inapp_off,
    parse_preferences,
    quiet_timezone,
    stored_preferences,
)
from herald.core.rules import QuietHoursMode, SkipReason, TypeRules

CHANNELS = ["inapp", "email", "sms", "webpush"]
CATEGORIES = [c.value for c in Category]
TYPES = ["order.shipped", "comment.created", "login.alert"]

switches = st.dictionaries(st.sampled_from(CHANNELS), st.booleans(), max_size=4)
choices = st.builds(Choice, st.none() | st.booleans(), switches)
preferences = st.builds(
    Preferences,
    switches,
    st.dictionaries(st.sampled_from(CATEGORIES), choices, max_size=3),
    st.dictionaries(st.sampled_from(TYPES), choices, max_size=3),
    st.none() | st.builds(QuietHours, st.just("22:00"), st.just("08:00"), st.none() | st.just("Asia/Shanghai")),
)
target = st.tuples(st.sampled_from(CATEGORIES), st.sampled_from(TYPES), st.sampled_from(CHANNELS))


def with_type(prefs: Preferences, key: str, choice: Choice) -> Preferences:
    return Preferences(prefs.channels, prefs.categories, {**prefs.types, key: choice}, prefs.quiet_hours)


def with_category(prefs: Preferences, key: str, choice: Choice) -> Preferences:
    return Preferences(prefs.channels, {**prefs.categories, key: choice}, prefs.types, prefs.quiet_hours)


def with_channel(prefs: Preferences, channel: str, on: bool) -> Preferences:
    return Preferences({**prefs.channels, channel: on}, prefs.categories, prefs.types, prefs.quiet_hours)


@given(target)
def test_nothing_set_means_allowed(where: tuple[str, str, str]) -> None:
    assert allowed(NO_PREFERENCES, *where)


@settings(max_examples=300)
@given(preferences, target, st.booleans())
def test_type_by_channel_beats_everything(prefs: Preferences, where: tuple[str, str, str], on: bool) -> None:
    category, key, channel = where
    base = prefs.types.get(key, Choice())
    changed = with_type(prefs, key, Choice(not on, {**base.channels, channel: on}))
    assert allowed(changed, category, key, channel) is on


@settings(max_examples=300)
@given(preferences, target, st.booleans())
def test_type_beats_category_and_channel(prefs: Preferences, where: tuple[str, str, str], on: bool) -> None:
    category, key, channel = where
    base = prefs.types.get(key, Choice())
    without_channel = {c: v for c, v in base.channels.items() if c != channel}
    changed = with_type(prefs, key, Choice(on, without_channel))
    assert allowed(changed, category, key, channel) is on
    # and whatever the category and the channel say then does not matter
    for override in (
        with_category(changed, category, Choice(not on, {channel: not on})),
        with_channel(changed, channel, not on),
    ):
        assert allowed(override, category, key, channel) is on


@settings(max_examples=300)
@given(preferences, target, st.booleans())
def test_category_by_channel_beats_category_and_channel(
    prefs: Preferences, where: tuple[str, str, str], on: bool
) -> None:
    category, key, channel = where
    prefs = Preferences(prefs.channels, prefs.categories, {t: c for t, c in prefs.types.items() if t != key})
    changed = with_category(prefs, category, Choice(not on, {channel: on}))
    assert allowed(changed, category, key, channel) is on
    assert allowed(with_channel(changed, channel, not on), category, key, channel) is on


@settings(max_examples=300)
@given(preferences, target, st.booleans())
def test_category_beats_channel(prefs: Preferences, where: tuple[str, str, str], on: bool) -> None:
    category, key, channel = where
    prefs = Preferences(prefs.channels, prefs.categories, {t: c for t, c in prefs.types.items() if t != key})
    changed = with_category(prefs, category, Choice(on, {}))
    assert allowed(changed, category, key, channel) is on
    assert allowed(with_channel(changed, channel, not on), category, key, channel) is on


@settings(max_examples=300)
@given(target, st.booleans())
def test_the_channel_switch_decides_alone(where: tuple[str, str, str], on: bool) -> None:
    category, key, channel = where
    assert allowed(with_channel(NO_PREFERENCES, channel, on), category, key, channel) is on


@settings(max_examples=300)
@given(preferences, target, target, st.booleans())
def test_settings_elsewhere_do_not_matter(
    prefs: Preferences, where: tuple[str, str, str], other: tuple[str, str, str], on: bool
) -> None:
    """A setting for another type, category or channel never changes the answer here."""
    category, key, channel = where
    before = allowed(prefs, category, key, channel)
    if other[1] != key:
        assert allowed(with_type(prefs, other[1], Choice(on, {channel: on})), category, key, channel) is before
    if other[0] != category:
        assert allowed(with_category(prefs, other[0], Choice(on, {})), category, key, channel) is before
    if other[2] != channel:
        assert allowed(with_channel(prefs, other[2], on), category, key, channel) is before


@settings(max_examples=500)
@given(preferences, st.sampled_from(CATEGORIES), st.sampled_from([*TYPES, "never.mentioned"]))
def test_the_inapp_index_answers_as_the_document(prefs: Preferences, category: str, key: str) -> None:
    rows = inapp_choices(prefs, CATEGORIES)
    assert inapp_off(rows, category, key) is not allowed(prefs, category, key, "inapp")
    if all(allowed(prefs, c, t, "inapp") for c in CATEGORIES for t in [*TYPES, "never.mentioned"]):
        assert rows == {}, "no rows for a user whose inbox is on everywhere"


@settings(max_examples=300)
@given(preferences)
def test_documents_round_trip(prefs: Preferences) -> None:
    document = prefs.as_json()
    parsed, problems = parse_preferences(document, channels=CHANNELS, categories=CATEGORIES)
    assert problems == []
    assert parsed.as_json() == document
    assert stored_preferences(document).as_json() == document


def problems_of(document: Any) -> dict[str, str]:
    _, problems = parse_preferences(document, channels=CHANNELS, categories=CATEGORIES)
    return dict(problems)


def test_validation_names_each_field() -> None:
    problems = problems_of(
        {
            "channels": {"fax": False, "email": "no"},
            "categories": {"marketing": {"enabled": False}, "reminder": {"channels": {"pigeon": False}, "mute": 1}},
            "types": {"bad key!": {"enabled": False}, "order.shipped": {"enabled": "yes"}, "x": []},
            "quiet_hours": {"start": "25:00", "end": "8:00", "timezone": "Mars/Olympus", "days": [1]},
            "extra": 1,
        }
    )
    assert set(problems) == {
        "channels.fax",
        "channels.email",
        "categories.marketing",
        "categories.reminder.channels.pigeon",
        "categories.reminder.mute",
        "types.bad key!",
        "types.order.shipped.enabled",
        "types.x",
        "quiet_hours.start",
        "quiet_hours.end",
        "quiet_hours.timezone",
        "quiet_hours.days",
        "extra",
    }
    assert "unknown channel 'fax'" in problems["channels.fax"]
    assert problems_of([]) == {"body": "must be a JSON object"}
    assert set(problems_of({"quiet_hours": {"start": "22:00"}})) == {"quiet_hours.end"}
    assert set(problems_of({"quiet_hours": {}})) == {"quiet_hours"}
    assert set(problems_of({"types": {f"t{i}": {"enabled": False} for i in range(1001)}})) == {"types"}
    assert problems_of({"channels": None, "categories": None, "types": None, "quiet_hours": None}) == {}


def test_nulls_mean_not_set() -> None:
    prefs, problems = parse_preferences(
        {"channels": {"email": None}, "types": {"a": {"enabled": None, "channels": {"sms": None}}}},
        channels=CHANNELS,
        categories=CATEGORIES,
    )
    assert problems == [] and prefs == NO_PREFERENCES


NOW = datetime(2025, 1, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
QUIET = Preferences(quiet_hours=QuietHours("22:00", "08:00", "Asia/Shanghai"))
WINDOW_END = datetime(2025, 1, 2, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai


def decide(prefs: Preferences, rules: TypeRules, *, channel: str = "email", expires_at: datetime | None = None) -> Any:
    return delivery_outcome(
        prefs,
        rules,
        category="reminder",
        type_key="order.shipped",
        channel=channel,
        now=NOW,
        timezone=quiet_timezone(prefs, None, "UTC"),
        expires_at=expires_at,
    )


def test_a_channel_turned_off_is_suppressed_unless_critical() -> None:
    off = Preferences(channels={"email": False})
    outcome = decide(off, TypeRules())
    assert outcome.status is DeliveryStatus.SKIPPED and outcome.reason == SkipReason.PREFERENCE
    assert not outcome.attempted
    assert decide(off, TypeRules(), channel="sms") is None
    assert decide(off, TypeRules(critical=True)) is None


def test_quiet_hours_defer_drop_deliver_and_expire() -> None:
    deferred = decide(QUIET, TypeRules())
    assert deferred.status is DeliveryStatus.PENDING and deferred.reason == SkipReason.QUIET_HOURS
    assert deferred.next_attempt_at == WINDOW_END and not deferred.attempted
    dropped = decide(QUIET, TypeRules(quiet_hours=QuietHoursMode.DROP))
    assert dropped.status is DeliveryStatus.SKIPPED and dropped.reason == SkipReason.QUIET_HOURS
    assert decide(QUIET, TypeRules(quiet_hours=QuietHoursMode.DELIVER)) is None
    assert decide(QUIET, TypeRules(critical=True)) is None
    expired = decide(QUIET, TypeRules(), expires_at=WINDOW_END - timedelta(seconds=1))
    assert expired.status is DeliveryStatus.SKIPPED and expired.reason == SkipReason.EXPIRED
    assert decide(QUIET, TypeRules(), expires_at=WINDOW_END).reason == SkipReason.QUIET_HOURS
    outside = Preferences(quiet_hours=QuietHours("22:00", "08:00", "UTC"))  # 15:00 UTC
    assert decide(outside, TypeRules()) is None


def test_the_timezone_of_quiet_hours() -> None:
    named = Preferences(quiet_hours=QuietHours("22:00", "08:00", "Asia/Tokyo"))
    unnamed = Preferences(quiet_hours=QuietHours("22:00", "08:00"))
    assert quiet_timezone(named, "Europe/Paris", "UTC") == "Asia/Tokyo"
    assert quiet_timezone(unnamed, "Europe/Paris", "UTC") == "Europe/Paris"
    assert quiet_timezone(unnamed, None, "America/Santiago") == "America/Santiago"
    assert quiet_timezone(unnamed, "Not/AZone", "UTC") == "UTC"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
near_documents = st.fixed_dictionaries(
    {},
    optional={
        "channels": st.dictionaries(st.sampled_from([*CHANNELS, "fax"]), json_values, max_size=3),
        "categories": st.dictionaries(st.sampled_from([*CATEGORIES, "marketing"]), json_values, max_size=3),
        "types": st.dictionaries(st.sampled_from([*TYPES, "", "bad key"]), json_values, max_size=3),
        "quiet_hours": json_values | st.fixed_dictionaries({"start": json_values, "end": json_values}),
    },
)


@settings(max_examples=400)
@given(json_values | near_documents)
def test_any_json_is_either_preferences_or_named_problems(document: Any) -> None:
    """Whatever a client sends, the answer is preferences or problems naming fields, never an exception."""
    prefs, problems = parse_preferences(document, channels=CHANNELS, categories=CATEGORIES)
    assert all(isinstance(f, str) and f and isinstance(m, str) and m for f, m in problems)
    if not problems:
        again, none = parse_preferences(prefs.as_json(), channels=CHANNELS, categories=CATEGORIES)
        assert none == [] and again == prefs
    stored_preferences(document)  # the lenient reader never fails either
