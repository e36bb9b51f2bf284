"""Opaque cursors: the encoded sort key of the last item of a page."""

from __future__ import annotations

import base64
import json
from datetime import datetime


class BadCursor(ValueError):
    pass


def encode_cursor(at: datetime, item_id: str) -> str:
    raw = json.dumps([at.isoformat(), item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(item_id, str) or "\x00" in item_id:
            raise BadCursor("cursor is not valid")
        return at, item_id
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadCursor("cursor is not valid") from exc


def encode_key_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([key]).encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        (key,) = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, str) or "\x00" in key:
            raise BadCursor("cursor is not valid")
        return key
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadCursor("cursor is not valid") from exc
