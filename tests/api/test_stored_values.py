"""Nothing already stored turns a read into a 500.

The door refuses lone surrogates and absurd nesting now (test_bad_input.py), but rows written by an
older version, a migration or a hand edit may still hold them. These tests put such values in through
the store, under the API, and read them back through the API.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, StatementError

from herald.store.tables import announcements, inbox_items, notifications, users
from tests.conftest import Harness

LONE = "\ud800"
REPLACED = "\ufffd"
ODD = {"x": LONE, "k" + "\udc00": ["a\udfffb", {"n": LONE}], "ok": "好😀"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def seed(harness: Harness, inbox_type: str) -> dict[str, str]:
    """A user with an inbox item from a notification, and a live announcement; their ids."""
    r = await harness.client.put("/v1/users/alice", json={"name": "Alice"}, headers=harness.admin())
    assert r.status_code == 200, r.text
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
    assert r.status_code == 202, r.text
    notification_id = r.json()["id"]
    r = await harness.client.post("/v1/announcements", json={"title": "t"}, headers=harness.admin())
    assert r.status_code == 201, r.text
    announcement_id = r.json()["id"]
    items = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    item_id = next(i["id"] for i in items if i["category"] != "announcement")
    return {"notification": notification_id, "announcement": announcement_id, "item": item_id}


async def poison(harness: Harness, ids: dict[str, str], value: Any) -> None:
    """Write ``value`` into every free-form JSON column the reads below return."""
    async with harness.herald.db.write() as conn:
        await conn.execute(update(inbox_items).where(inbox_items.c.id == ids["item"]).values(data=value, actor=value))
        await conn.execute(update(announcements).where(announcements.c.id == ids["announcement"]).values(data=value))
        await conn.execute(update(users).where(users.c.id == "alice").values(data=value, channels=value))
        await conn.execute(
            update(notifications).where(notifications.c.id == ids["notification"]).values(data=value, actor=value)
        )
    harness.herald.announcements.invalidate()


async def read_everything(harness: Harness, ids: dict[str, str]) -> list[dict[str, Any]]:
    """Every read that returns the poisoned columns: all must answer 200 with valid UTF-8 JSON."""
    user = harness.user("alice")
    reads = [
        ("/v1/me/inbox", user),
        ("/v1/me/inbox?category=announcement", user),
        (f"/v1/me/inbox/{ids['item']}", user),
        (f"/v1/me/inbox/{ids['announcement']}", user),
        ("/v1/me/inbox/counts", user),
        ("/v1/announcements", harness.reader()),
        (f"/v1/announcements/{ids['announcement']}", harness.reader()),
        (f"/v1/notifications/{ids['notification']}", harness.reader()),
        ("/v1/users/alice", harness.reader()),
    ]
    bodies = []
    for path, headers in reads:
        r = await harness.client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text)
        r.content.decode("utf-8")  # strict: no surrogate escaped into the bytes
        bodies.append(r.json())
    r = await harness.client.post(f"/v1/me/inbox/{ids['item']}/read", headers=user)
    assert r.status_code == 200, r.text
    return bodies


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


async def test_a_stored_lone_surrogate_reads_as_a_replacement_character(harness: Harness, inbox_type: str) -> None:
    ids = await seed(harness, inbox_type)
    if harness.herald.db.is_postgres:
        # PostgreSQL's jsonb refuses a lone surrogate (\ud800) outright: such a row cannot exist there.
        with pytest.raises((DBAPIError, StatementError)):
            await poison(harness, ids, ODD)
        await read_everything(harness, ids)
        return
    await poison(harness, ids, ODD)
    bodies = await read_everything(harness, ids)
    texts = [s for body in bodies for s in strings(body)]
    assert any(REPLACED in s for s in texts)
    assert "好😀" in texts  # a valid pair (stored as \ud83d\ude00) is not touched
    for s in texts:
        s.encode("utf-8")
    inbox = bodies[0]["items"]
    private = next(i for i in inbox if i["id"] == ids["item"])
    assert private["data"]["x"] == REPLACED
    assert private["data"]["k" + REPLACED] == ["a" + REPLACED + "b", {"n": REPLACED}]


async def test_stored_deep_nesting_reads_back(harness: Harness, inbox_type: str) -> None:
    ids = await seed(harness, inbox_type)
    await poison(harness, ids, nested(900))
    bodies = await read_everything(harness, ids)
    assert bodies[0]["items"]
