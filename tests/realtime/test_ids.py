"""Event ids carry the moment they were made; any ULID-based Herald id reads the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from herald.core.ids import new_id
from herald.realtime.ids import BadEventId, event_id_time, new_event_id


def test_an_event_id_says_when_it_was_made() -> None:
    before = datetime.now(UTC)
    event_id = new_event_id()
    after = datetime.now(UTC)
    assert event_id.startswith("evt_") and len(event_id) == 30
    assert before - timedelta(milliseconds=1) <= event_id_time(event_id) <= after


def test_inbox_item_and_announcement_ids_are_resume_points_too() -> None:
    for prefix in ("itm", "ann"):
        moment = event_id_time(new_id(prefix))
        assert abs(moment - datetime.now(UTC)) < timedelta(seconds=1)
    assert event_id_time(new_event_id().lower()) is not None  # Crockford base32 is case-insensitive


@pytest.mark.parametrize(
    "value",
    [
        "",
        "evt_",
        "evt_123",
        "evt_" + "U" * 26,  # U is not a Crockford digit
        "evt_00000000000000000000000000",  # 1970: no Herald id is that old
        "evt_ZZZZZZZZZZZZZZZZZZZZZZZZZZ",  # far beyond any real time
        "x" * 41,
        "evt_01JAYQ6Z3K8B5C7D9E1F2G3H4J\n",
        "evt_01JAYQ6Z3K8B5C7D9E1F2G3H4\x00",
    ],
)
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(BadEventId):
        event_id_time(value)
