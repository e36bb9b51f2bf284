"""An open stream is told when its user's unread items expire (rule 10): ``inbox.removed`` for the
item and fresh ``counts``, at the moment it expires, for items that were there when the stream opened
and for those that arrived on it; on both databases and both backplanes, over a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from herald.store.types import utcnow
from tests.conftest import make_settings
from tests.realtime.support import Live, live_server, sse


@pytest.fixture
async def live(database_url: str, backplane_url: str | None) -> AsyncIterator[Live]:
    async with live_server(make_settings(database_url, redis_url=backplane_url)) as server:
        await server.put_inbox_type()
        yield server


async def trigger(live: Live, user: str, expires_at: datetime | None = None) -> str:
    body = {"type": "order.paid", "to": [user], "data": {"order": "o", "amount": "1"}}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    r = await live.client.post("/v1/notifications", json=body, headers=live.sender())
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def item_of(live: Live, notification_id: str) -> str:
    """The notification's one in-app item (its in-app delivery is the item)."""
    r = await live.client.get(f"/v1/notifications/{notification_id}", headers=live.admin())
    (item,) = [d for d in r.json()["deliveries"] if d["channel"] == "inapp"]
    return str(item["id"])


async def test_a_stream_is_told_when_unread_items_expire(live: Live) -> None:
    first = await trigger(live, "alice", utcnow() + timedelta(seconds=1.5))  # there before the stream opens
    await trigger(live, "alice")  # lasts
    await trigger(live, "bob", utcnow() + timedelta(seconds=1))  # someone else's
    async with sse(live.client, "/v1/me/events", headers=live.user("alice")) as events:
        assert (await events.until("counts")).data["total"] == 2
        second = await trigger(live, "alice", utcnow() + timedelta(seconds=3))  # arrives on the stream
        await events.until("inbox.new")
        while (await events.until("counts")).data["total"] != 3:  # (a resync's counts may come first)
            pass

        removed = await events.until("inbox.removed", timeout=5)
        assert removed.data == {"id": await item_of(live, first)}
        assert (await events.until("counts")).data["total"] == 2
        removed = await events.until("inbox.removed", timeout=5)
        assert removed.data == {"id": await item_of(live, second)}
        counts = await events.until("counts")
        assert counts.data["total"] == 1
        assert counts.data == (await live.client.get("/v1/me/inbox/counts", headers=live.user("alice"))).json()
        assert [e for e in await events.quiet(1.0) if e.event in ("inbox.removed", "counts")] == []
