"""What every string and JSON value taken from outside must be before Herald stores or uses it.

Text must be Unicode scalar values without NUL: a lone surrogate (``"\\ud800"`` in JSON) cannot be
encoded as UTF-8, so it fails every later write and every read that returns it, and PostgreSQL
stores no NUL. Free-form JSON (data, template fields, profiles) is bounded in nesting depth and in
the size of each object and array, so that no stored value is too deep or too large to read back.
The same rules, applied leniently, repair values already stored (``load_stored_json``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

MAX_DEPTH = 32
"""Levels of nesting in a request body (the body itself is level 1)."""
MAX_ITEMS = 1000
"""Members of one JSON object, or items of one array below the body's own fields."""
MAX_STORED_DEPTH = 64
"""Deeper parts of a stored value read back as null (only rows written before the door was shut)."""
EARLIEST_YEAR = 1970
LATEST_YEAR = 9000

_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class BadInput(ValueError):
    """One value that is not acceptable, with the dotted path of the field holding it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def text_problem(value: str) -> str | None:
    """Why ``value`` is not acceptable text, or None."""
    found = _NOT_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x}), which is not a Unicode character"


def printable(value: str) -> str:
    """``value`` safe to put in a response: lone surrogates written as ``\\udxxx`` escapes."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _join(path: str, part: str | int) -> str:
    part = printable(part) if isinstance(part, str) else str(part)
    return f"{path}.{part}" if path else part


def check_json(
    value: Any,
    path: str = "",
    *,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
    depth: int = 1,
) -> None:
    """Raise BadInput naming the first string, key, nesting level or collection that is not acceptable.

    ``depth`` is the nesting level of ``value`` itself. Arrays at level 2 (the body's own fields,
    such as ``to``) are bounded by their field's own rule, not by ``max_items``.
    """
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise BadInput(path, problem)
        return
    if not isinstance(value, dict | list):
        return
    if depth > max_depth:
        raise BadInput(path, f"nested deeper than {max_depth} levels (the limit)")
    if len(value) > max_items and (isinstance(value, dict) or depth > 2):
        kind = "members" if isinstance(value, dict) else "items"
        raise BadInput(path, f"has {len(value)} {kind}; at most {max_items} are allowed")
    if isinstance(value, dict):
        for key, sub in value.items():
            where = _join(path, key)
            problem = text_problem(key)
            if problem is not None:
                raise BadInput(where, f"the key {problem.removeprefix('contains ')}")
            check_json(sub, where, max_depth=max_depth, max_items=max_items, depth=depth + 1)
    else:
        if all(type(sub) is str for sub in value) and _NOT_TEXT.search("".join(value)) is None:
            return  # a long list of plain ids (``to``): one C-speed search instead of one per item
        for i, sub in enumerate(value):
            check_json(sub, _join(path, i), max_depth=max_depth, max_items=max_items, depth=depth + 1)


def check_text(field: str, value: str) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise BadInput(field, problem)


def check_instant(value: datetime) -> datetime:
    """``value`` in UTC, or ValueError when it has no offset or lies outside years 1970..9000."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a UTC offset (RFC 3339)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"is outside the years {EARLIEST_YEAR}..{LATEST_YEAR}") from exc
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"is outside the years {EARLIEST_YEAR}..{LATEST_YEAR}")
    return utc


def _repair(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict | list) and depth > MAX_STORED_DEPTH:
        return None
    if isinstance(value, dict):
        return {_LONE_SURROGATE.sub(REPLACEMENT, k): _repair(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_repair(v, depth + 1) for v in value]
    return value


def load_stored_json(text: str | bytes) -> Any:
    """``json.loads`` for values read from the database, repaired so that any read can answer.

    A stored lone surrogate becomes U+FFFD and parts nested deeper than MAX_STORED_DEPTH become
    null. Both are skipped for the usual clean value (C-speed substring counts decide). A decoded
    ``str`` holds no raw surrogate: only a ``\\udxxx`` escape in the JSON text can make one.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogatepass")
    try:
        value = json.loads(text)
    except RecursionError:
        return None
    escaped_surrogate = "\\ud" in text or "\\uD" in text
    maybe_deep = text.count("[") + text.count("{") > MAX_STORED_DEPTH
    if escaped_surrogate or maybe_deep:
        return _repair(value, 1)
    return value
