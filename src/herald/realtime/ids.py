"""Event ids: ``evt_`` + a ULID, so an id carries the moment its event was sent.

Replay needs no event log: "what did I miss since this id" is answered from the store by time, and
the time is in the id. Any Herald id built on a ULID (``itm_…``, ``ann_…``) reads the same way,
so a client may resume from the newest inbox item it holds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from herald.core.ids import new_id

EVENT_PREFIX = "evt"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: i for i, c in enumerate(_CROCKFORD)} | {c.lower(): i for i, c in enumerate(_CROCKFORD)}
_TIME_DIGITS = 10
_ULID_LENGTH = 26
_EARLIEST_MS = 946_684_800_000  # 2000-01-01: no Herald id is older; a smaller time is not an id of ours
_LATEST_MS = 7_258_118_400_000  # 2200-01-01


class BadEventId(ValueError):
    pass


def new_event_id() -> str:
    return new_id(EVENT_PREFIX)


def event_id_time(event_id: str) -> datetime:
    """The moment encoded in ``event_id`` (``evt_…``, ``itm_…``, ``ann_…`` or a bare ULID), in UTC.

    BadEventId for anything else: the value comes from a client (``Last-Event-ID``, ``?since=``).
    """
    _, _, ulid = event_id.rpartition("_")
    if len(ulid) != _ULID_LENGTH or len(event_id) > 40:
        raise BadEventId("not an event id")
    ms = 0
    for char in ulid[:_TIME_DIGITS]:
        digit = _VALUE.get(char)
        if digit is None:
            raise BadEventId("not an event id")
        ms = ms * 32 + digit
    if any(c not in _VALUE for c in ulid[_TIME_DIGITS:]) or not _EARLIEST_MS <= ms <= _LATEST_MS:
        raise BadEventId("not an event id")
    return datetime.fromtimestamp(ms / 1000, UTC)
