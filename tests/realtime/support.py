"""Helpers for the realtime tests: a Herald served by uvicorn with its lifespan, an SSE reader, a TCP
proxy in front of Redis that a test can cut (an outage without touching the shared Redis server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn

from herald.app import create_app
from herald.config import Settings
from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.store.apikeys import create_api_key
from tests.conftest import SECRET
from tests.support import free_port


@dataclass
class SSE:
    event: str
    data: Any
    id: str | None


class EventReader:
    """Reads the events of one ``text/event-stream`` response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.seen: list[SSE] = []
        self.retry: int | None = None

    async def next(self, timeout: float = 5.0) -> SSE:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SSE:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if "event" in fields or "data" in fields:
                    event = SSE(
                        fields.get("event", "message"), json.loads(fields.get("data", "null")), fields.get("id")
                    )
                    self.seen.append(event)
                    return event
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "retry":
                self.retry = int(value)
            elif name:
                fields[name] = value
        raise EOFError("the stream ended")

    async def until(self, event: str, timeout: float = 5.0) -> SSE:
        """The next ``event`` (others are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            got = await self.next(max(0.01, deadline - time.monotonic()))
            if got.event == event:
                return got

    async def quiet(self, seconds: float, *, ignore: tuple[str, ...] = ("heartbeat",)) -> list[SSE]:
        """Everything but ``ignore`` that arrives within ``seconds``."""
        got: list[SSE] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = await self.next(left)
            except TimeoutError:
                break
            if event.event not in ignore:
                got.append(event)
        return got


@asynccontextmanager
async def sse(client: httpx.AsyncClient, path: str, **kwargs: Any) -> AsyncIterator[EventReader]:
    async with client.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        reader = EventReader(response)
        yield reader


@dataclass
class Live:
    """A Herald API on loopback (uvicorn, lifespan on), with keys."""

    base: str
    herald: Herald
    admin_key: str
    send_key: str
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.base, timeout=10)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def sender(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.send_key}"}

    @staticmethod
    def token(user_id: str, seconds: int = 3600) -> str:
        return mint_user_token(SECRET, user_id, seconds)[0]

    def user(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def put_inbox_type(self, key: str = "order.paid", **extra: Any) -> str:
        r = await self.client.put(
            f"/v1/notification-types/{key}", json={"channels": ["inapp"], **extra}, headers=self.admin()
        )
        assert r.status_code in (200, 201), r.text
        r = await self.client.put(
            f"/v1/notification-types/{key}/templates/inapp",
            json={"title": "订单 ${order} 已支付", "summary": "${amount} 元"},
            headers=self.admin(),
        )
        assert r.status_code == 200, r.text
        return key

    async def trigger(self, key: str, to: list[str], **data: Any) -> str:
        r = await self.client.post(
            "/v1/notifications", json={"type": key, "to": to, "data": data}, headers=self.sender()
        )
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


async def make_keys(settings: Settings) -> tuple[str, str]:
    herald = Herald(settings)
    try:
        async with herald.db.write() as conn:
            _, admin = await create_api_key(conn, "admin", ["admin"])
            _, send = await create_api_key(conn, "sender", ["send"])
    finally:
        await herald.close()
    return admin, send


@asynccontextmanager
async def serve(settings: Settings, *, run_worker: bool = False) -> AsyncIterator[tuple[str, Herald]]:
    """create_app(settings) under uvicorn in a thread, lifespan on (the realtime listener starts).
    Waits without blocking this loop: a TcpProxy served by it may be what the app connects through."""
    app = create_app(settings, run_worker=run_worker)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app.state.herald
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)


@asynccontextmanager
async def live_server(settings: Settings, *, run_worker: bool = False) -> AsyncIterator[Live]:
    admin, send = await make_keys(settings)
    async with serve(settings, run_worker=run_worker) as (base, herald):
        live = Live(base, herald, admin, send)
        try:
            yield live
        finally:
            await live.client.aclose()


class TcpProxy:
    """A TCP forwarder on loopback: ``cut()`` drops every connection and refuses new ones (the server
    is "down"), ``restore()`` listens again on the same port."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.db}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()
