"""Opaque cursors: the encoded sort key of the last item of a page.

A cursor comes back from the client, so decoding trusts nothing: anything that is not a cursor this
API could have given (bad base64 or JSON, a time without an offset or outside years 1970..9000, an
id that is not plain text) is BadCursor, answered 400 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from herald.core.inputs import check_instant, text_problem

MAX_ID_LENGTH = 200


class BadCursor(ValueError):
    pass


def encode_cursor(at: datetime, item_id: str) -> str:
    raw = json.dumps([at.isoformat(), item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decoded(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, UnicodeError, RecursionError, binascii.Error) as exc:
        raise BadCursor("cursor is not valid") from exc


def _checked_key(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH or text_problem(value) is not None:
        raise BadCursor("cursor is not valid")
    return value


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    decoded = _decoded(cursor)
    if not isinstance(decoded, list) or len(decoded) != 2 or not isinstance(decoded[0], str):
        raise BadCursor("cursor is not valid")
    at_text, item_id = decoded
    try:
        at = check_instant(datetime.fromisoformat(at_text))
    except ValueError as exc:
        raise BadCursor("cursor is not valid") from exc
    return at, _checked_key(item_id)


def encode_key_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([key]).encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str) -> str:
    decoded = _decoded(cursor)
    if not isinstance(decoded, list) or len(decoded) != 1:
        raise BadCursor("cursor is not valid")
    return _checked_key(decoded[0])
