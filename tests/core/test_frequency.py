"""The counted delivery rules as pure decisions: which windows a send falls in, their keys, and
whether a send has room given the slots already taken."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from herald.core.frequency import (
    Window,
    content_digest,
    first_refused,
    lock_id,
    merge_same_keys,
    window_key,
    windows_for,
)
from herald.core.rules import Cap, CapPeriod, SkipReason, Throttle, TypeRules

KEY = re.compile(r"^(dedup|cap|throttle):[0-9a-f]{32}$")
# any text at all: NUL, lone surrogates, RTL marks, astral characters
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=300)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
CONTENT = st.dictionaries(st.sampled_from(["title", "summary", "body", "text"]), ANY_TEXT, max_size=4)

EVERYTHING = TypeRules(
    dedup_seconds=600,
    caps=(Cap("sms", CapPeriod.DAY, 3), Cap(None, CapPeriod.HOUR, 10), Cap("email", CapPeriod.DAY, 1)),
    throttle=Throttle(5, 3600),
)


def windows(rules: TypeRules = EVERYTHING, **overrides: Any) -> tuple[Window, ...]:
    args: dict[str, Any] = {
        "type_key": "order.shipped",
        "user_id": "u1",
        "channel": "sms",
        "content": {"text": "已发货"},
        "data": {},
    }
    args.update(overrides)
    return windows_for(rules, **args)


# -- which windows a send falls in ------------------------------------------------------------------


def test_no_counted_rule_no_window() -> None:
    assert windows(TypeRules()) == ()
    assert not TypeRules().limits_sends


def test_every_rule_in_the_order_its_reason_is_reported() -> None:
    found = windows()
    assert [(w.reason, w.max, w.seconds) for w in found] == [
        (SkipReason.DEDUP, 1, 600),
        (SkipReason.FREQUENCY_CAP, 3, 86400),  # this channel's cap first
        (SkipReason.FREQUENCY_CAP, 10, 3600),  # then the one over all channels
        (SkipReason.THROTTLE, 5, 3600),
    ]
    assert "sms" in found[1].detail and "all channels" in found[2].detail
    assert "600 s" in found[0].detail and "5" in found[3].detail


def test_a_cap_on_another_channel_does_not_apply() -> None:
    email = windows(channel="email")
    assert [w.max for w in email if w.reason is SkipReason.FREQUENCY_CAP] == [1, 10]
    assert not any(w.reason is SkipReason.FREQUENCY_CAP for w in windows(TypeRules(caps=EVERYTHING.caps[2:])))


def test_the_all_channels_cap_and_the_throttle_are_shared_by_the_channels() -> None:
    sms, email = windows(channel="sms"), windows(channel="email")
    shared = {w.key for w in sms} & {w.key for w in email}
    assert shared == {sms[2].key, sms[3].key}  # all-channels cap, throttle; not dedup, not the channel caps


def test_caps_and_throttle_are_per_type_and_per_user_dedup_is_per_user_and_channel() -> None:
    base = windows()
    other_type = windows(type_key="comment.created")
    other_user = windows(user_id="u2")
    assert base[0].key == other_type[0].key  # dedup: the same content to the same user and channel
    assert {w.key for w in base[1:]}.isdisjoint(w.key for w in other_type[1:])
    assert {w.key for w in base}.isdisjoint(w.key for w in other_user)


def test_two_caps_with_the_same_channel_and_period_are_one_window_at_the_lower_max() -> None:
    rules = TypeRules(caps=(Cap("sms", CapPeriod.DAY, 5), Cap("sms", CapPeriod.DAY, 2), Cap("sms", CapPeriod.HOUR, 1)))
    found = windows(rules)
    assert [(w.max, w.seconds) for w in found] == [(2, 86400), (1, 3600)]
    assert len({w.key for w in found}) == 2


def test_merge_keeps_first_seen_order() -> None:
    a = Window(SkipReason.THROTTLE, "throttle:a", 5, 10, "")
    b = Window(SkipReason.FREQUENCY_CAP, "cap:b", 3, 10, "")
    assert merge_same_keys([a, b, a]) == (a, b)


@given(user=ANY_TEXT, channel=ANY_TEXT, type_key=ANY_TEXT, content=CONTENT, data=JSON_VALUES)
def test_keys_have_one_safe_shape_whatever_the_input(
    user: str, channel: str, type_key: str, content: dict[str, str], data: Any
) -> None:
    rules = TypeRules(dedup_seconds=60, caps=(Cap(None, CapPeriod.DAY, 3),), throttle=Throttle(1, 1))
    found = windows_for(rules, type_key=type_key, user_id=user, channel=channel, content=content, data={"d": data})
    assert len(found) == 3
    for window in found:
        assert KEY.match(window.key), window.key
        assert len(window.key) <= 64  # the rule_slots.key column
        assert -(2**63) <= lock_id(window.key) < 2**63


@given(a=st.lists(ANY_TEXT, min_size=1, max_size=4), b=st.lists(ANY_TEXT, min_size=1, max_size=4))
def test_different_parts_make_different_keys(a: list[str], b: list[str]) -> None:
    assert (window_key("cap", *a) == window_key("cap", *b)) == (a == b)


# -- what dedup compares --------------------------------------------------------------------------


@given(content=CONTENT.filter(bool), data=JSON_VALUES, other=JSON_VALUES)
def test_dedup_compares_the_rendered_content(content: Mapping[str, str], data: Any, other: Any) -> None:
    assert content_digest(content, {"x": data}) == content_digest(dict(content), {"x": other})


@given(data=JSON_VALUES, other=JSON_VALUES)
def test_without_a_template_dedup_compares_the_data_the_channel_carries(data: Any, other: Any) -> None:
    def canonical(value: Any) -> str:
        return json.dumps(value, ensure_ascii=True, sort_keys=True)

    same = content_digest({}, {"x": data}) == content_digest({}, {"x": other})
    assert same == (canonical(data) == canonical(other))


def test_content_key_order_does_not_matter_but_every_field_does() -> None:
    assert content_digest({"title": "a", "body": "b"}, {}) == content_digest({"body": "b", "title": "a"}, {})
    assert content_digest({"title": "a", "body": "b"}, {}) != content_digest({"title": "a", "body": "c"}, {})
    assert content_digest({"title": "a"}, {}) != content_digest({}, {"title": "a"})


# -- the decision ---------------------------------------------------------------------------------

WINDOWS = st.lists(
    st.builds(
        Window,
        st.sampled_from([SkipReason.DEDUP, SkipReason.FREQUENCY_CAP, SkipReason.THROTTLE]),
        st.sampled_from(["k1", "k2", "k3", "k4"]),
        st.integers(1, 5),
        st.integers(1, 86400),
        st.just(""),
    ),
    max_size=5,
).map(merge_same_keys)


@given(
    found=WINDOWS,
    taken=st.dictionaries(st.sampled_from(["k1", "k2", "k3", "k4"]), st.integers(0, 7)),
    held=st.sets(st.sampled_from(["k1", "k2", "k3", "k4"])),
)
def test_refused_by_the_first_full_window_it_holds_no_slot_in(
    found: tuple[Window, ...], taken: dict[str, int], held: set[str]
) -> None:
    refused = first_refused(found, taken, held)
    full = [w for w in found if w.key not in held and taken.get(w.key, 0) >= w.max]
    assert refused == (full[0] if full else None)


def test_a_delivery_passing_again_is_never_refused_by_its_own_slot() -> None:
    cap = Window(SkipReason.FREQUENCY_CAP, "cap:x", 1, 60, "")
    assert first_refused([cap], {"cap:x": 0}, set()) is None
    assert first_refused([cap], {"cap:x": 1}, set()) == cap  # someone else's slot
    assert first_refused([cap], {"cap:x": 1}, {"cap:x"}) is None  # the cap was lowered meanwhile: still its own


class SlidingLog:
    """The counting the backends do, in memory: each slot counts for its window from when taken."""

    def __init__(self) -> None:
        self.slots: dict[str, dict[str, float]] = {}  # key -> holder -> expires at

    def take(self, holder: str, found: tuple[Window, ...], now: float) -> Window | None:
        live = {k: {h: t for h, t in s.items() if t > now} for k, s in self.slots.items()}
        taken = {k: sum(1 for h in s if h != holder) for k, s in live.items()}
        held = {k for k, s in live.items() if holder in s}
        refused = first_refused(found, taken, held)
        for window in found:
            slots = self.slots.setdefault(window.key, {})
            if refused is None:
                slots[holder] = now + window.seconds
            else:
                slots.pop(holder, None)
        return refused


@given(
    max_sends=st.integers(1, 4),
    seconds=st.integers(1, 100),
    events=st.lists(st.tuples(st.integers(0, 60), st.integers(-3, 10)), min_size=1, max_size=40),
)
def test_never_more_than_max_in_any_window_of_its_length(
    max_sends: int, seconds: int, events: list[tuple[int, int]]
) -> None:
    """A sliding window: whatever the arrival times, no span of ``seconds`` holds more than ``max``
    sends, each counted at its last take; a delivery passing again (a retry) while its slot lives
    is never refused by it, and takes no second slot."""
    cap = Window(SkipReason.FREQUENCY_CAP, "cap:k", max_sends, seconds, "")
    log = SlidingLog()
    last_take: dict[str, int] = {}  # holder -> when its slot was last taken
    now = 0
    for i, (gap, pick) in enumerate(events):
        now += gap
        earlier = sorted(last_take)
        holder = earlier[pick % len(earlier)] if pick >= 0 and earlier else f"d{i}"
        its_slot_lives = holder in last_take and last_take[holder] + seconds > now
        if log.take(holder, (cap,), now) is None:
            last_take[holder] = now
        else:
            assert not its_slot_lives
            last_take.pop(holder, None)  # refused: it ends unsent
        assert sum(1 for t in last_take.values() if t + seconds > now) <= max_sends
    times = sorted(last_take.values())
    for start in times:
        assert sum(1 for t in times if start <= t < start + seconds) <= max_sends
