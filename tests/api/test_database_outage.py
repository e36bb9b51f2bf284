"""A database outage answers 503 problem+json with Retry-After, keeps the connection, loses nothing.

PostgreSQL is made unreachable by a small TCP proxy the tests start in front of the real server and
stop (closing the listener and every open connection); the shared server itself is never touched.
Also: a URL pointing at a closed port, and SQLite files that cannot be opened or stay locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import uvicorn

from herald.app import create_app
from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.store.apikeys import create_api_key
from tests.conftest import PG_URL, SECRET, Harness, make_settings

PROBLEM = "application/problem+json"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``stop()`` is an outage, ``start()`` the recovery."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert 1 <= int(r.headers["retry-after"]) <= 30
    body = r.json()
    assert body["status"] == 503 and body["title"] and "database" in body["detail"], body


@contextlib.asynccontextmanager
async def app_on(url: str, **overrides: Any) -> AsyncIterator[tuple[Any, Herald]]:
    app = create_app(make_settings(url, **overrides), run_worker=False)
    async with app.router.lifespan_context(app):
        yield app, app.state.herald


@contextlib.asynccontextmanager
async def client_of(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
        yield client


postgres_only = pytest.mark.skipif(PG_URL is None, reason="needs HERALD_TEST_DATABASE_URL (PostgreSQL)")


@pytest.fixture
async def proxied(database_url: str) -> AsyncIterator[tuple[TcpProxy, Harness]]:
    """A harness whose PostgreSQL connections go through a proxy the test can stop."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL; SQLite outages are tested below")
    parts = urlsplit(database_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    await proxy.start()
    async with app_on(through(database_url, proxy.port)) as (app, herald):
        async with herald.db.write() as conn:
            _, admin = await create_api_key(conn, "admin", ["admin"])
            _, send = await create_api_key(conn, "sender", ["send"])
            _, read = await create_api_key(conn, "reader", ["read"])
        async with client_of(app) as client:
            yield proxy, Harness(herald, client, admin, send, read)
    with contextlib.suppress(AssertionError):
        await proxy.stop()


async def eventually_ok(send: Any, tries: int = 5) -> httpx.Response:
    """After the database comes back, the pool drops its dead connections on the first use."""
    for _ in range(tries):
        r: httpx.Response = await send()
        if r.status_code != 503:
            return r
        await asyncio.sleep(0.1)
    return r


async def test_an_outage_answers_503_on_trigger_inbox_and_reads_and_loses_nothing(
    proxied: tuple[TcpProxy, Harness], inbox_type: str
) -> None:
    proxy, harness = proxied
    body = {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}}
    r = await harness.trigger(body)
    assert r.status_code == 202, r.text
    accepted = {r.json()["id"]}
    harness.herald.announcements.invalidate()

    await proxy.stop()
    for _ in range(3):
        assert_unavailable(await harness.trigger(body))
        assert_unavailable(await harness.client.get("/v1/me/inbox", headers=harness.user("alice")))
        assert_unavailable(await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice")))
        assert_unavailable(await harness.client.get("/v1/announcements", headers=harness.reader()))
        assert_unavailable(await harness.client.get("/v1/users/alice", headers=harness.reader()))
        assert_unavailable(await harness.client.put("/v1/users/bob", json={"name": "Bob"}, headers=harness.admin()))
    # an Idempotency-Key claimed in the outage is not left behind: the retry runs
    assert_unavailable(await harness.trigger(body, **{"Idempotency-Key": "k-1"}))
    # bad input is still 4xx: it is refused before the database is needed
    r = await harness.trigger({"type": inbox_type, "to": [], "send_at": "9999-12-31T23:59:59-23:59"})
    assert r.status_code == 422, r.text

    await proxy.start()
    r = await eventually_ok(lambda: harness.trigger(body, **{"Idempotency-Key": "k-1"}))
    assert r.status_code == 202, r.text
    accepted.add(r.json()["id"])
    r = await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 2  # both accepted, nothing from the refused ones
    for notification_id in accepted:
        r = await harness.client.get(f"/v1/notifications/{notification_id}", headers=harness.reader())
        assert r.status_code == 200, r.text
    assert (await harness.client.get("/v1/users/bob", headers=harness.reader())).status_code == 404


async def test_an_outage_keeps_the_http_connection_alive(proxied: tuple[TcpProxy, Harness], inbox_type: str) -> None:
    """Under uvicorn: two requests on one keep-alive connection both get a 503, neither a dropped socket."""
    proxy, harness = proxied
    app = harness.client._transport.app  # type: ignore[attr-defined]
    config = uvicorn.Config(app, host="127.0.0.1", port=closed_port(), lifespan="off", log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        await proxy.stop()
        reader, writer = await asyncio.open_connection("127.0.0.1", config.port)
        payload = json.dumps({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}}).encode()
        for _ in range(3):
            writer.write(
                b"POST /v1/notifications HTTP/1.1\r\nHost: herald.test\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {harness.send_key}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode().split("\r\n")
            assert lines[0] == "HTTP/1.1 503 Service Unavailable", head
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            headers = {k.lower(): v for k, v in headers.items()}
            assert headers.get("connection", "keep-alive").lower() != "close", headers
            assert int(headers["retry-after"]) >= 1
            assert headers["content-type"].startswith(PROBLEM)
            body = await reader.readexactly(int(headers["content-length"]))
            assert json.loads(body)["status"] == 503
        writer.close()
    finally:
        server.should_exit = True
        await task


@postgres_only
async def test_a_database_at_a_closed_port_answers_503() -> None:
    assert PG_URL is not None
    async with app_on(through(PG_URL, closed_port())) as (app, _):
        async with client_of(app) as client:
            key = {"Authorization": "Bearer hk_whatever"}
            assert_unavailable(await client.post("/v1/notifications", json={"type": "t", "to": ["a"]}, headers=key))
            assert_unavailable(await client.get("/v1/announcements", headers=key))
            token, _ = mint_user_token(SECRET, "alice", 60)
            assert_unavailable(await client.get("/v1/me/inbox", headers={"Authorization": f"Bearer {token}"}))
            r = await client.get("/healthz")
            assert r.status_code == 200


async def test_an_sqlite_file_that_cannot_be_opened_answers_503(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gone/herald.db"
    async with app_on(url) as (app, _):
        async with client_of(app) as client:
            r = await client.get("/v1/announcements", headers={"Authorization": "Bearer hk_whatever"})
            assert_unavailable(r)


async def test_a_locked_sqlite_database_answers_503(harness: Harness, inbox_type: str, database_url: str) -> None:
    """Another process holds the write lock past the busy timeout."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite locking")
    path = database_url.split("///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        # the pool's one connection waits 50 ms for a lock, not the configured 15 s
        async with harness.herald.db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA busy_timeout=50")
        holder.execute("BEGIN EXCLUSIVE")
        r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
        assert_unavailable(r)
        holder.execute("ROLLBACK")
        r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
        assert r.status_code == 202, r.text
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


async def test_a_programming_error_in_the_database_stays_500(harness: Harness, database_url: str) -> None:
    """Not every database error is an outage: a missing table is a bug, and says 500."""
    if not database_url.startswith("sqlite"):
        pytest.skip("drops a table: only on the test's own SQLite copy, never the shared PostgreSQL database")
    async with harness.herald.db.write() as conn:
        await conn.exec_driver_sql("DROP TABLE announcement_marks")
        await conn.exec_driver_sql("DROP TABLE announcements")
    harness.herald.announcements.invalidate()
    r = await harness.client.get("/v1/announcements", headers=harness.reader())
    assert r.status_code == 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "retry-after" not in r.headers
