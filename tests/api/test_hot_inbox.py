"""GET /v1/me/inbox and /counts answered before routing (api/hot.py): the same status and the same bytes
as the routes in api/me.py for every request, valid or not, on each database; requests it does not
judge plainly valid go on to the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from herald.api.hot import HotInbox
from herald.app import create_app
from tests.api.test_merge import like, put_liked
from tests.conftest import SECRET, Harness, make_settings


@asynccontextmanager
async def routes_only(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database without the middleware: what the routes answer."""
    app = create_app(make_settings(database_url), run_worker=False)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotInbox]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield client


async def seed(h: Harness, inbox_type: str) -> None:
    odd = {"amount": "1", "nested": {"list": [1, 2.5, None, True], "中文": '✓ "quoted" \\ back'}, "emoji": "😀"}
    for i in range(5):
        r = await h.trigger({"type": inbox_type, "to": ["alice"], "data": {**odd, "amount": str(i)}})
        assert r.status_code == 202, r.text
    r = await h.trigger({"type": inbox_type, "to": ["bob"], "data": {"amount": "9"}})
    assert r.status_code == 202
    for title in ("公告一", "公告二"):
        r = await h.client.post("/v1/announcements", json={"title": title, "data": {"x": [1]}}, headers=h.admin())
        assert r.status_code == 201, r.text
    feed = (await h.client.get("/v1/me/inbox", headers=h.user("alice"))).json()["items"]
    await h.client.post(f"/v1/me/inbox/{feed[0]['id']}/read", headers=h.user("alice"))  # an announcement
    await h.client.post(f"/v1/me/inbox/{feed[3]['id']}/archive", headers=h.user("alice"))
    await h.client.post(f"/v1/me/inbox/{feed[4]['id']}/read", headers=h.user("alice"))


QUERIES = [
    "",
    "?limit=3",
    "?limit=100",
    "?status=unread",
    "?status=read&limit=2",
    "?category=reminder",
    "?category=announcement",
    "?archived=true",
    "?archived=false&status=all",
    "?cursor=",
    # what the middleware leaves to the routes
    "?limit=0",
    "?limit=101",
    "?limit=abc",
    "?limit=+3",
    "?limit=3&limit=4",
    "?status=bogus",
    "?category=nope",
    "?archived=yes",
    "?cursor=garbage",
    "?cursor=%00",
    "?cursor=" + "a" * 501,
    "?unknown=1",
    "?title=%ED%A0%80",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_same_answer_as_the_routes(harness: Harness, inbox_type: str, database_url: str, query: str) -> None:
    await seed(harness, inbox_type)
    async with routes_only(database_url) as routes:
        for path in ("/v1/me/inbox", "/v1/me/inbox/counts"):
            hot = await harness.client.get(path + query, headers=harness.user("alice"))
            ref = await routes.get(path + query, headers=harness.user("alice"))
            assert (hot.status_code, hot.headers["content-type"]) == (ref.status_code, ref.headers["content-type"])
            if hot.status_code == 200:
                assert hot.content == ref.content, (path + query, hot.text, ref.text)
            else:
                assert hot.json() == ref.json()


async def test_cursor_pages_match_and_are_served_hot(harness: Harness, inbox_type: str, database_url: str) -> None:
    await seed(harness, inbox_type)
    stats = harness.client._transport.app.state.hot_inbox  # type: ignore[attr-defined]
    served = stats["served"]
    async with routes_only(database_url) as routes:
        cursor, pages = None, 0
        while True:
            url = "/v1/me/inbox?limit=2" + (f"&cursor={cursor}" if cursor else "")
            hot = await harness.client.get(url, headers=harness.user("alice"))
            ref = await routes.get(url, headers=harness.user("alice"))
            assert hot.status_code == 200 and hot.content == ref.content
            pages += 1
            cursor = hot.json()["next_cursor"]
            if cursor is None:
                break
    assert pages == 3  # 4 visible private items + 2 announcements, 2 by 2
    assert stats["served"] == served + pages  # every page came from the middleware, none from the routes


def token_for(user: str, *, expires_in: int = 3600) -> dict[str, str]:
    import jwt

    now = datetime.now(UTC)
    claims = {"sub": user, "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=expires_in)).timestamp())}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


async def test_tokens_are_judged_as_the_routes_judge_them(harness: Harness, inbox_type: str, database_url: str) -> None:
    await seed(harness, inbox_type)
    wrong_secret = {"Authorization": "Bearer " + __import__("jwt").encode({"sub": "alice"}, "x" * 40, "HS256")}
    cases = [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        harness.admin(),  # an API key
        {"Authorization": "Bearer not.a.jwt"},
        wrong_secret,
        token_for("alice", expires_in=-10),
    ]
    stats = harness.client._transport.app.state.hot_inbox  # type: ignore[attr-defined]
    served = stats["served"]
    async with routes_only(database_url) as routes:
        for headers in cases:
            for path in ("/v1/me/inbox", "/v1/me/inbox/counts"):
                hot = await harness.client.get(path, headers=headers)
                ref = await routes.get(path, headers=headers)
                assert hot.status_code == ref.status_code == 401, (headers, hot.text)
                assert hot.json() == ref.json()
    assert stats["served"] == served


async def test_merged_items_are_the_same_on_both_paths(harness: Harness, inbox_type: str, database_url: str) -> None:
    """count and actors (issue 8, merging): stored JSON passed through by the middleware, as the route shows it."""
    h = harness
    await seed(h, inbox_type)
    await put_liked(h)
    for n, post in enumerate(["p1", "p1", "p2", "p1", "p1", "p1", "p1", "p1"]):
        r = await h.trigger(like(post, n))
        assert r.status_code == 202, r.text
    stats = h.client._transport.app.state.hot_inbox  # type: ignore[attr-defined]
    served = stats["served"]
    async with routes_only(database_url) as routes:
        for query in ("", "?limit=2", "?status=unread", "?category=reminder", "?archived=true"):
            hot = await h.client.get("/v1/me/inbox" + query, headers=h.user("alice"))
            ref = await routes.get("/v1/me/inbox" + query, headers=h.user("alice"))
            assert hot.status_code == ref.status_code == 200
            assert hot.content == ref.content, (query, hot.text, ref.text)
    assert stats["served"] == served + 5
    items = (await h.client.get("/v1/me/inbox?limit=3", headers=h.user("alice"))).json()["items"]
    assert [(i["count"], len(i["actors"])) for i in items] == [(7, 5), (1, 1), (1, 0)]  # merged, p2, announcement


async def test_each_user_sees_only_their_own(harness: Harness, inbox_type: str) -> None:
    await seed(harness, inbox_type)
    bob = (await harness.client.get("/v1/me/inbox", headers=harness.user("bob"))).json()["items"]
    mine = [i for i in bob if i["type"] != "announcement"]
    assert [i["summary"] for i in mine] == ["充值 9 元"]
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("bob"))).json()
    assert counts["by_category"] == {"reminder": 1, "announcement": 2, "direct": 0}
    nobody = (await harness.client.get("/v1/me/inbox", headers=harness.user("carol"))).json()["items"]
    assert [i["type"] for i in nobody] == ["announcement", "announcement"]


async def test_a_database_error_is_answered_by_the_route(harness: Harness, inbox_type: str) -> None:
    """The middleware never answers an error itself: the route does (a 503 for an outage)."""
    await seed(harness, inbox_type)
    await harness.herald.db.dispose()
    engine = harness.herald.db.engine
    original = engine.pool

    class Down(Exception):
        pass

    def broken_connect() -> None:
        raise OSError("connection refused")

    engine.pool = original.recreate()
    engine.pool._creator = broken_connect  # type: ignore[attr-defined]
    try:
        stats = harness.client._transport.app.state.hot_inbox  # type: ignore[attr-defined]
        passed = stats["passed"]
        r = await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert stats["passed"] == passed + 1
    finally:
        engine.pool = original
