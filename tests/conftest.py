"""The conformance harness: every test that takes ``herald`` runs on SQLite and on PostgreSQL.

PostgreSQL runs when HERALD_TEST_DATABASE_URL is set (``.ci/run`` sets it). Under CI=true it
must be set: the suite fails instead of quietly testing SQLite alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from herald.app import create_app
from herald.config import Settings
from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.engine.worker import Worker
from herald.store.apikeys import create_api_key
from herald.store.db import create_engine
from herald.store.migrate import upgrade
from herald.store.tables import metadata

PG_URL = os.environ.get("HERALD_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("HERALD_TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SECRET = "test-secret-key-for-herald-tests-0123456789"

if IN_CI and not PG_URL:
    raise pytest.UsageError("CI=true but HERALD_TEST_DATABASE_URL is not set: the PostgreSQL suite must run in CI")
if IN_CI and not REDIS_URL:
    raise pytest.UsageError("CI=true but HERALD_TEST_REDIS_URL is not set: the Redis suite must run in CI")

BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
# Shared-state backends (rate limits; later the realtime backplane): in-process always, Redis when given.
SHARED_BACKENDS = ["memory"] + (["redis"] if REDIS_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating each time is slower)."""
    path = tmp_path_factory.mktemp("template") / "herald.db"

    async def migrate() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    return path


_pg_migrated = False


async def _reset_postgres(url: str) -> None:
    global _pg_migrated
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        if not _pg_migrated:
            await upgrade(engine)
            _pg_migrated = True
        names = ", ".join(t.name for t in metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "herald.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    assert PG_URL is not None
    asyncio.run(_reset_postgres(PG_URL))
    return PG_URL


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 1.0,
        "max_attempts": 3,
        "lease_seconds": 5,
        "allow_private_urls": True,
        "auto_migrate": False,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Harness:
    """A Herald app under test, with an HTTP client and keys for each scope."""

    herald: Herald
    client: httpx.AsyncClient
    admin_key: str
    send_key: str
    read_key: str

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def sender(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.send_key}"}

    def reader(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.read_key}"}

    def user(self, user_id: str) -> dict[str, str]:
        token, _ = mint_user_token(SECRET, user_id, 3600)
        return {"Authorization": f"Bearer {token}"}

    async def drain(self, rounds: int = 50) -> None:
        """Run the worker until it finds nothing due."""
        worker = Worker(self.herald)
        for _ in range(rounds):
            if not await worker.run_once():
                return

    async def put_type(self, key: str, channels: list[str], templates: dict[str, dict[str, Any]], **extra: Any) -> None:
        r = await self.client.put(
            f"/v1/notification-types/{key}", json={"channels": channels, **extra}, headers=self.admin()
        )
        assert r.status_code in (200, 201), r.text
        for channel, fields in templates.items():
            r = await self.client.put(
                f"/v1/notification-types/{key}/templates/{channel}", json=fields, headers=self.admin()
            )
            assert r.status_code == 200, r.text

    async def trigger(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post("/v1/notifications", json=body, headers={**self.sender(), **headers})


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    async with running_harness(make_settings(database_url)) as h:
        yield h


@pytest.fixture(params=SHARED_BACKENDS)
def backplane_url(request: pytest.FixtureRequest) -> str | None:
    """The realtime backplane: None (in-process) or the test Redis (pub/sub)."""
    return REDIS_URL if request.param == "redis" else None


@pytest.fixture
async def realtime_harness(database_url: str, backplane_url: str | None) -> AsyncIterator[Harness]:
    """``harness`` on each database and each realtime backplane (its listener started by the lifespan)."""
    async with running_harness(make_settings(database_url, redis_url=backplane_url)) as h:
        yield h


@asynccontextmanager
async def running_harness(settings: Settings) -> AsyncIterator[Harness]:
    app = create_app(settings, run_worker=False)
    herald: Herald = app.state.herald
    async with app.router.lifespan_context(app):
        async with herald.db.write() as conn:
            _, admin = await create_api_key(conn, "admin", ["admin"])
            _, send = await create_api_key(conn, "sender", ["send"])
            _, read = await create_api_key(conn, "reader", ["read"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield Harness(herald, client, admin, send, read)


@pytest.fixture
async def inbox_type(harness: Harness) -> str:
    """A reminder type with in-app templates in zh-CN and en."""
    await harness.put_type(
        "recharge.succeeded",
        ["inapp"],
        {},
    )
    for locale, fields in {
        "zh-CN": {"title": "充值成功", "summary": "充值 ${amount} 元", "body": "您的账户已到账 ${amount} 元"},
        "en": {"title": "Recharge succeeded", "summary": "Topped up ${amount}", "body": "${amount} credited"},
    }.items():
        r = await harness.client.put(
            f"/v1/notification-types/recharge.succeeded/templates/inapp?locale={locale}",
            json=fields,
            headers=harness.admin(),
        )
        assert r.status_code == 200, r.text
    return "recharge.succeeded"
