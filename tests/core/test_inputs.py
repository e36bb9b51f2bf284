"""The rules every string and JSON value from outside must meet, and the repair of stored values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.cursor import BadCursor, decode_cursor, decode_key_cursor
from herald.core.inputs import (
    MAX_STORED_DEPTH,
    BadInput,
    check_instant,
    check_json,
    load_stored_json,
    text_problem,
)

any_char = st.characters() | st.characters(categories=["Cs"]) | st.just("\x00")
any_text = st.text(any_char, max_size=10)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)


def is_scalar_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *all_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


@given(any_json)
def test_check_json_accepts_exactly_the_values_made_of_scalar_text(value: Any) -> None:
    clean = all(is_scalar_text(s) for s in all_strings(value))
    try:
        check_json(value)
    except BadInput as exc:
        assert not clean, exc
        exc.field.encode("utf-8")  # the field name itself can be put in a response
    else:
        assert clean


def test_a_valid_surrogate_pair_is_one_character_and_fine() -> None:
    value = json.loads('{"e": "\\ud83d\\ude00"}')
    assert value == {"e": "😀"}
    check_json(value)


def test_the_field_is_named_down_to_the_key() -> None:
    with pytest.raises(BadInput) as caught:
        check_json({"data": {"a": [1, {"b": "x\udc00"}]}})
    assert caught.value.field == "data.a.1.b"
    assert "surrogate" in caught.value.message
    with pytest.raises(BadInput) as caught:
        check_json({"data": {"k\ud800": 1}})
    assert caught.value.field == "data.k\\ud800"


def test_depth_and_sizes_are_capped() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(BadInput, match="32 levels"):
        check_json({"data": deep})
    with pytest.raises(BadInput, match="at most 1000"):
        check_json({"data": {str(i): i for i in range(1001)}})
    with pytest.raises(BadInput, match="at most 1000"):
        check_json({"data": {"x": list(range(1001))}})
    check_json({"to": [str(i) for i in range(5000)]})  # the body's own arrays follow their own rules


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1969-12-31T23:59:59+00:00", "9001-01-01T00:00:00Z"],
)
def test_absurd_instants_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"1970\.\.9000"):
        check_instant(datetime.fromisoformat(text))


def test_instants_come_back_in_utc() -> None:
    moment = datetime(2030, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert check_instant(moment) == datetime(2030, 1, 1, tzinfo=UTC)
    assert check_instant(moment).tzinfo is UTC


@given(any_json)
def test_stored_json_always_loads_into_encodable_values(value: Any) -> None:
    loaded = load_stored_json(json.dumps(value))
    json.dumps(loaded, ensure_ascii=False).encode("utf-8")
    if all(is_scalar_text(s.replace("\x00", "")) for s in all_strings(value)):
        assert loaded == value  # a clean value comes back untouched


def test_stored_json_too_deep_is_cut() -> None:
    deep: Any = "leaf"
    for _ in range(500):
        deep = {"a": deep}
    loaded = load_stored_json(json.dumps(deep))
    for _ in range(MAX_STORED_DEPTH):
        loaded = loaded["a"]
    assert loaded is None


def test_text_problem_names_the_trouble() -> None:
    assert text_problem("plain 文字 😀") is None
    assert text_problem("a\x00") == "contains a NUL character"
    assert "\\udfff" in (text_problem("a\udfff") or "")


@given(st.datetimes(timezones=st.just(UTC)), any_text)
def test_a_cursor_decodes_to_a_sane_key_or_is_refused(at: datetime, item_id: str) -> None:
    import base64

    raw = base64.urlsafe_b64encode(json.dumps([at.isoformat(), item_id]).encode()).decode()
    try:
        decoded_at, decoded_id = decode_cursor(raw)
    except BadCursor:
        return
    assert 1970 <= decoded_at.year <= 9000 and decoded_at.tzinfo is UTC
    assert is_scalar_text(decoded_id) and decoded_id == item_id


@given(any_json)
def test_a_key_cursor_of_any_json_decodes_or_is_refused(value: Any) -> None:
    import base64

    raw = base64.urlsafe_b64encode(json.dumps([value]).encode()).decode()
    try:
        key = decode_key_cursor(raw)
    except BadCursor:
        return
    assert isinstance(key, str) and is_scalar_text(key)
