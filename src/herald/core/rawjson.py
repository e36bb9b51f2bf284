"""Stored JSON passed through to a response without being decoded and encoded again.

The inbox feed is the hottest read: twenty items, four JSON columns each. Decoding each column only to
encode it again a moment later cost more than the query. A column whose stored text is clean (no
escaped surrogate, not deeper than ``MAX_STORED_DEPTH``: the checks ``load_stored_json`` makes) goes
out as it is; any other is decoded and repaired as everywhere else.

``dumps`` is ``json.dumps`` as Starlette's ``JSONResponse`` calls it, with ``RawJSON`` values spliced
in: each is written as a placeholder string carrying a per-process random nonce, then the placeholders
are replaced by the raw texts in one pass. Content cannot forge a placeholder: the nonce never leaves the
process, and when the encoded document holds it more often than there are placeholders (content that
contains it), nothing is spliced and the raw values are decoded instead.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from herald.core.inputs import MAX_STORED_DEPTH, load_stored_json

_NONCE = secrets.token_hex(16)
_PLACEHOLDER = re.compile(f'"{_NONCE}:(\\d+)"')


class RawJSON:
    """A JSON text known to be valid and clean, to be written out verbatim."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        return json.loads(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawJSON) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({self.text!r})"


def stored_json(text: str | None) -> Any:
    """A JSON column read as text: ``None`` for SQL NULL and JSON ``null``, ``RawJSON`` when the text
    can go out as it is, else the decoded and repaired value (``load_stored_json``)."""
    if text is None or text == "null":
        return None
    if text == "{}" or text == "[]":  # the usual empty data and actions: no splicing needed
        return {} if text == "{}" else []
    if "\\ud" in text or "\\uD" in text or text.count("[") + text.count("{") > MAX_STORED_DEPTH:
        return load_stored_json(text)
    return RawJSON(text)


def plain(value: Any) -> Any:
    """``value`` with every ``RawJSON`` decoded: for callers that need Python values."""
    if isinstance(value, RawJSON):
        return value.value()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def dumps(content: Any) -> bytes:
    """UTF-8 JSON, compact, as ``JSONResponse`` renders it, with ``RawJSON`` values written verbatim."""
    raws: list[str] = []

    def placeholder(value: Any) -> str:
        if isinstance(value, RawJSON):
            raws.append(value.text)
            return f"{_NONCE}:{len(raws) - 1}"
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    text = json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"), default=placeholder
    )
    if raws:
        if text.count(_NONCE) != len(raws):  # the content itself holds the nonce: no splicing
            return dumps(plain(content))
        text = _PLACEHOLDER.sub(lambda m: raws[int(m.group(1))], text)
    return text.encode("utf-8")
