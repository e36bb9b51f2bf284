"""``herald serve --demo``'s ``/demo``: only in demo mode, and only ever for the demo user."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.app import create_app
from herald.engine.bootstrap import DEMO_TYPE, DEMO_USER, seed_demo
from herald.engine.tokens import mint_user_token, verify_user_token
from tests.conftest import SECRET, Harness, make_settings


@pytest.fixture
async def demo_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(make_settings(database_url), run_worker=False, demo=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield client, app.state.herald


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_user_token(SECRET, user, 600)[0]}"}


async def test_no_demo_page_outside_demo_mode(harness: Harness) -> None:
    assert (await harness.client.get("/demo")).status_code == 404
    assert (await harness.client.post("/demo/token")).status_code == 404
    assert (await harness.client.post("/demo/notify", headers=bearer(DEMO_USER))).status_code == 404


async def test_the_page_embeds_a_token_for_the_demo_user_only(demo_client: Any) -> None:
    client, herald = demo_client
    await seed_demo(herald)
    r = await client.get("/demo")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert '<script src="/static/herald-inbox.js"></script>' in page and "<herald-inbox" in page
    tokens = set(re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", page))  # every JWT on the page
    assert len(tokens) == 1
    assert verify_user_token(SECRET, tokens.pop()) == DEMO_USER
    assert "hk_" not in page  # never an API key
    fresh = (await client.post("/demo/token")).json()
    assert verify_user_token(SECRET, fresh["token"]) == DEMO_USER and fresh["expires_at"]


async def test_notify_sends_to_the_demo_user_only(demo_client: Any) -> None:
    client, herald = demo_client
    await seed_demo(herald)
    before = (await client.get("/v1/me/inbox/counts", headers=bearer(DEMO_USER))).json()["total"]
    r = await client.post("/demo/notify", headers=bearer(DEMO_USER))
    assert r.status_code == 202, r.text
    assert r.json()["recipients"] == 1
    counts = (await client.get("/v1/me/inbox/counts", headers=bearer(DEMO_USER))).json()
    assert counts["total"] == before + 1
    newest = (await client.get("/v1/me/inbox?limit=1", headers=bearer(DEMO_USER))).json()["items"][0]
    assert newest["type"] == DEMO_TYPE
    bob_before = (await client.get("/v1/me/inbox/counts", headers=bearer("bob"))).json()["total"]
    refused = await client.post("/demo/notify", headers=bearer("bob"))
    assert refused.status_code == 403
    assert "demo user 'alice' only" in refused.json()["detail"]
    assert (await client.get("/v1/me/inbox/counts", headers=bearer("bob"))).json()["total"] == bob_before
    assert (await client.post("/demo/notify")).status_code == 401


async def test_notify_without_the_demo_type_says_why(demo_client: Any) -> None:
    client, _ = demo_client  # not seeded: the database had something in it
    r = await client.post("/demo/notify", headers=bearer(DEMO_USER))
    assert r.status_code == 409
    assert "seeds the type 'recharge.succeeded' into an empty database only" in r.json()["detail"]
