"""/readyz: ready only when every backend the process was configured with answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from herald.app import create_app
from tests.conftest import REDIS_URL, make_settings
from tests.support import free_port


@asynccontextmanager
async def client_for(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, **settings), run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield client


async def test_ready_without_redis(database_url: str) -> None:
    async with client_for(database_url) as client:
        r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"


async def test_not_ready_when_the_configured_redis_is_down(database_url: str) -> None:
    async with client_for(database_url, redis_url=f"redis://:hunter2@127.0.0.1:{free_port()}/0") as client:
        r = await client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].startswith("Redis unreachable")
    assert "hunter2" not in r.text


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (HERALD_TEST_REDIS_URL)")
async def test_ready_when_the_configured_redis_answers(database_url: str) -> None:
    async with client_for(database_url, redis_url=REDIS_URL) as client:
        r = await client.get("/readyz")
    assert r.status_code == 200, r.text
