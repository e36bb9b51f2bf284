"""Stored JSON passed through to a response: the same document as decoding and encoding it again."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from herald.core import rawjson
from herald.core.rawjson import RawJSON, stored_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values, st.text())
def test_a_raw_value_reads_back_as_the_value(value: Any, neighbour: str) -> None:
    text = json.dumps(value)
    out = json.loads(rawjson.dumps({"raw": stored_json(text), "text": neighbour, "list": [stored_json(text)]}))
    expected = None if value is None else value
    assert out == {"raw": expected, "text": neighbour, "list": [expected]}


def test_content_cannot_forge_a_placeholder() -> None:
    forged = f"{rawjson._NONCE}:0"  # even content that knew the nonce stays a string
    out = json.loads(rawjson.dumps({"a": RawJSON('{"x": 1}'), "b": forged, "c": f'"{forged}"'}))
    assert out == {"a": {"x": 1}, "b": forged, "c": f'"{forged}"'}


def test_renders_as_a_json_response_does() -> None:
    content = {"items": [{"title": "订单 ✓", "data": {"k": "v"}}], "next_cursor": None}
    from starlette.responses import JSONResponse

    assert rawjson.dumps(content) == JSONResponse(content).body


def test_stored_text_that_needs_repair_is_decoded() -> None:
    assert stored_json(None) is None
    assert stored_json("null") is None
    assert isinstance(stored_json('{"a": [1, 2]}'), RawJSON)
    assert stored_json("{}") == {} and stored_json("[]") == []  # plain values: nothing to splice
    assert stored_json('{"a": "\\ud800"}') == {"a": "\ufffd"}  # a lone surrogate becomes U+FFFD
    assert stored_json('["\\ud83d\\ude00"]') == ["\U0001f600"]  # a pair is a character
    deep = "[" * 70 + "]" * 70
    assert not isinstance(stored_json(deep), RawJSON)
    assert json.loads(rawjson.dumps(stored_json(deep))) is not None
