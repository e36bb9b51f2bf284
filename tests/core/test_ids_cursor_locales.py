from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.cursor import BadCursor, decode_cursor, encode_cursor
from herald.core.ids import new_id, new_ids
from herald.core.locales import pick_locale


def test_ids_are_prefixed_unique_and_time_sortable() -> None:
    first = new_id("ntf")
    time.sleep(0.002)
    later = new_ids("ntf", 1000)
    assert first.startswith("ntf_") and len(first) == 30
    assert len(set(later)) == 1000
    assert all(first < i for i in later)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 12, 31), timezones=st.just(UTC)),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40),
)
def test_cursor_round_trips(at: datetime, item_id: str) -> None:
    assert decode_cursor(encode_cursor(at, item_id)) == (at, item_id)


def test_a_lone_surrogate_in_a_cursor_is_refused() -> None:
    """Not text: PostgreSQL would refuse it as a parameter (a 500) where a bad cursor is a 400."""
    with pytest.raises(BadCursor):
        decode_cursor(encode_cursor(datetime.now(UTC), "itm_\ud800"))


def test_a_nul_in_a_cursor_is_refused() -> None:
    """PostgreSQL cannot compare text holding NUL: such a cursor must be a 400, not a 500."""
    with pytest.raises(BadCursor):
        decode_cursor(encode_cursor(datetime.now(UTC), "itm_\x00"))


@given(st.text(max_size=60))
def test_garbage_cursor_is_refused_cleanly(text: str) -> None:
    try:
        decode_cursor(text)
    except BadCursor:
        pass


def test_naive_cursor_is_refused() -> None:
    import base64
    import json

    raw = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00", "x"]).encode()).decode()
    with pytest.raises(BadCursor):
        decode_cursor(raw)


@pytest.mark.parametrize(
    ("available", "wanted", "expected"),
    [
        ({"zh-CN", "en"}, "en", "en"),
        ({"zh-CN", "en"}, "en-GB", "en"),
        ({"zh-CN", "en"}, "fr", "zh-CN"),
        ({"zh-TW", "en"}, None, "zh-TW"),
        ({"ja", "en"}, "fr", "en"),
        (set(), "en", None),
    ],
)
def test_locale_fallback(available: set[str], wanted: str | None, expected: str | None) -> None:
    assert pick_locale(available, wanted, "zh-CN") == expected
