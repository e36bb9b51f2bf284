"""Many readers at once never deadlock the connection pool (a request never holds one connection
while it waits for another): 256 concurrent inbox and counts reads with live announcements whose
cache is refreshed on every read, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import Harness


async def test_256_concurrent_inbox_readers_complete(harness: Harness, inbox_type: str) -> None:
    h = harness
    r = await h.trigger({"type": inbox_type, "to": ["u1", "u2"], "data": {"amount": "1"}})
    assert r.status_code == 202, r.text
    for i in range(3):
        r = await h.client.post(
            "/v1/announcements",
            json={"title": f"公告 {i}", "kind": "notice", "audience": {"tags": ["vip"]} if i else {"all": True}},
            headers=h.admin(),
        )
        assert r.status_code == 201, r.text
    h.herald.announcements.ttl = 0.0  # every read refreshes the cache: the nested acquisition, every time

    async def read(i: int) -> int:
        user = f"u{i % 2 + 1}"
        path = "/v1/me/inbox" if i % 2 else "/v1/me/inbox/counts"
        resp = await h.client.get(path, headers=h.user(user))
        return resp.status_code

    started = time.monotonic()
    statuses = await asyncio.wait_for(asyncio.gather(*(read(i) for i in range(256))), timeout=60)
    elapsed = time.monotonic() - started
    assert statuses == [200] * 256
    assert elapsed < 20, elapsed  # a pool deadlock shows as a 30 s pool timeout
