#!/usr/bin/env python
"""What faults.py, worker_throughput.py and latency.py share: a webhook sink, a Herald database set
up for webhook deliveries, and ``herald worker`` processes.

The sink is a raw ASGI app under uvicorn, in its own process on loopback
(``python bench/webhook_bench.py --sink --port P``). ``POST /hook`` is the receiver; it records each
request's ``webhook-id`` and the answer it gave. ``POST /_control`` sets its mode and clears the
records, ``GET /_report`` returns them summed up (it walks every record), ``GET /_progress`` only
the running counts (cheap enough to ask often during a million-delivery run). Modes:

* ``healthy``: 200 at once;
* ``faulty``: 30 % of requests answered 500, 5 % held for ``hang`` seconds (past the webhook
  account's timeout, so the sender gives up), the rest 200. Each request draws anew, so a retry of
  a delivery may fail again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from _support import free_port, fresh_postgres
from sqlalchemy import func, select, text

SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"herald-bench-webhook-signing-key").decode()
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench"
TYPE_KEY = "bench.hook"
ACCOUNT = "sink"
TRIGGER_BATCH = 1000  # `to` recipients per POST: at most HERALD_INLINE_FANOUT_LIMIT, expanded in the request
HERE = os.path.dirname(os.path.abspath(__file__))


# -- the sink (its own process) ------------------------------------------------------------------


@dataclass
class Sink:
    """Raw ASGI webhook receiver that records, per webhook-id, the statuses it answered."""

    mode: str = "healthy"
    fail_rate: float = 0.30
    hang_rate: float = 0.05
    hang_seconds: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    answers: dict[str, list[int]] = field(default_factory=dict)  # webhook-id -> statuses; 0 = hung
    first_at: float | None = None
    last_new_ok_at: float | None = None  # when the latest id got its first 2xx
    body_bytes: int = 0
    ok_ids: int = 0  # ids answered 2xx at least once, kept as requests come (for /_progress)
    requests: int = 0

    def reset(self, mode: str, seed: int, hang_seconds: float) -> None:
        self.mode, self.hang_seconds = mode, hang_seconds
        self.rng = random.Random(seed)
        self.answers = {}
        self.first_at = self.last_new_ok_at = None
        self.ok_ids = self.requests = 0

    def report(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        duplicates = 0
        ok_ids = 0
        for answers in self.answers.values():
            oks = 0
            for s in answers:
                statuses[str(s)] = statuses.get(str(s), 0) + 1
                oks += 200 <= s < 300
            ok_ids += oks > 0
            duplicates += oks > 1
        return {
            "mode": self.mode,
            "requests": sum(statuses.values()),
            "ids": len(self.answers),
            "ok_ids": ok_ids,
            "duplicates": duplicates,
            "statuses": statuses,
            "first_at": self.first_at,
            "last_new_ok_at": self.last_new_ok_at,
            "body_bytes": self.body_bytes,
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        path = scope["path"]
        if path == "/hook":
            await self._hook(scope, body, send)
        elif path == "/_control":
            args = json.loads(body)
            self.reset(args.get("mode", "healthy"), int(args.get("seed", 1)), float(args.get("hang_seconds", 5)))
            await _answer(send, 200, b"{}")
        elif path == "/_report":
            await _answer(send, 200, json.dumps(self.report()).encode())
        elif path == "/_progress":
            progress = {"ok_ids": self.ok_ids, "requests": self.requests, "first_at": self.first_at}
            await _answer(send, 200, json.dumps(progress).encode())
        else:
            await _answer(send, 404, b"")

    async def _hook(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        now = time.time()
        if self.first_at is None:
            self.first_at = now
        msg_id = ""
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                msg_id = value.decode()
                break
        self.body_bytes = len(body)
        self.requests += 1
        status = 200
        if self.mode == "faulty":
            draw = self.rng.random()
            if draw < self.fail_rate:
                status = 500
            elif draw < self.fail_rate + self.hang_rate:
                status = 0
        answers = self.answers.setdefault(msg_id, [])
        if status == 0:
            answers.append(0)  # the sender times out first: whatever comes later, it never sees
            await asyncio.sleep(self.hang_seconds)
            await _answer(send, 200, b"late")
            return
        if status == 200 and not any(200 <= s < 300 for s in answers):
            self.last_new_ok_at = now
            self.ok_ids += 1
        answers.append(status)
        await _answer(send, status, b"ok" if status == 200 else b"fault")


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_sink(port: int) -> None:
    import uvicorn

    uvicorn.run(Sink(), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


class SinkProcess:
    """The sink in a child process, and the client that controls it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hook_url = f"{self.base}/hook"
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "webhook_bench.py"), "--sink", "--port", str(self.port)],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the sink exited"
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.base}/_report", timeout=1)
                return
            time.sleep(0.05)
        raise RuntimeError("the sink did not start")

    def reset(self, mode: str, *, seed: int = 1, hang_seconds: float = 5.0) -> None:
        r = httpx.post(
            f"{self.base}/_control", json={"mode": mode, "seed": seed, "hang_seconds": hang_seconds}, timeout=10
        )
        r.raise_for_status()

    def report(self) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/_report", timeout=60)
        r.raise_for_status()
        return dict(r.json())

    def progress(self) -> dict[str, Any]:
        """Ids answered 2xx so far and requests, without walking the records."""
        r = httpx.get(f"{self.base}/_progress", timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def sink_process() -> Iterator[SinkProcess]:
    sink = SinkProcess()
    try:
        yield sink
    finally:
        sink.close()


# -- the database --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(db: str, pg_url: str) -> AsyncIterator[str]:
    """A new, migrated database: the PostgreSQL one named in ``pg_url`` re-created, or a temp SQLite file."""
    from herald.store.db import create_engine
    from herald.store.migrate import upgrade

    tmpdir = None
    if db == "postgres":
        url = pg_url
        await fresh_postgres(url)
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix="herald-bench-")
        url = f"sqlite+aiosqlite:///{os.path.join(tmpdir.name, 'herald.db')}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    try:
        yield url
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def settings_for(url: str, **overrides: Any) -> Any:
    from herald.config import Settings

    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": SECRET,
        "auto_migrate": False,
        "allow_private_urls": True,
        "log_level": "warning",
        "embedded_worker": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def api_client(url: str, **overrides: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The real API (no worker in it) over an in-process ASGI transport, with an admin key."""
    from herald.app import create_app
    from herald.store.apikeys import create_api_key

    app = create_app(settings_for(url, **overrides), run_worker=False)
    herald = app.state.herald
    async with app.router.lifespan_context(app):
        async with herald.db.write() as conn:
            _, key = await create_api_key(conn, "bench", ["admin"])
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://herald.bench", headers=headers, timeout=600
        ) as client:
            yield herald, client


async def setup_webhook(client: httpx.AsyncClient, hook_url: str, *, timeout: float) -> None:
    """A webhook channel account pointing at the sink, and a type that sends on it."""
    config = {"url": hook_url, "secret": WEBHOOK_SECRET, "timeout": timeout}
    r = await client.put(f"/v1/channel-accounts/{ACCOUNT}", json={"channel": "webhook", "config": config})
    assert r.status_code in (200, 201), r.text
    r = await client.put(f"/v1/notification-types/{TYPE_KEY}", json={"channels": ["webhook"]})
    assert r.status_code in (200, 201), r.text


async def trigger_many(client: httpx.AsyncClient, n: int) -> None:
    """N webhook deliveries: POST /v1/notifications with ``to`` lists of up to 1000 users."""
    for start in range(0, n, TRIGGER_BATCH):
        to = [f"user{i:07d}" for i in range(start, min(n, start + TRIGGER_BATCH))]
        r = await client.post("/v1/notifications", json={"type": TYPE_KEY, "to": to, "data": {"n": start}})
        assert r.status_code == 202, r.text


async def delivery_statuses(url: str) -> dict[str, int]:
    from herald.store.db import create_engine
    from herald.store.tables import deliveries

    engine = create_engine(url, pool_size=1, max_overflow=0) if "postgres" in url else create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
            return {s: int(n) for s, n in rows}
    finally:
        await engine.dispose()


class StatusPoller:
    """Counts deliveries by status over one open connection (cheap enough to ask often)."""

    def __init__(self, url: str) -> None:
        from herald.store.db import create_engine

        self.engine = create_engine(url, pool_size=1, max_overflow=0) if "postgres" in url else create_engine(url)

    async def sent(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM deliveries WHERE status = 'sent'"))).scalar_one())

    async def leased_by_pid(self, pid: int) -> int:
        """Deliveries a worker process holds (its lease owner is ``host:pid:random``)."""
        async with self.engine.connect() as conn:
            q = text("SELECT count(*) FROM deliveries WHERE status = 'sending' AND lease_owner LIKE :owner")
            return int((await conn.execute(q, {"owner": f"%:{pid}:%"})).scalar_one())

    async def close(self) -> None:
        await self.engine.dispose()


# -- herald worker processes ---------------------------------------------------------------------


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    metrics_port: int
    log_path: str

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def in_flight(self) -> float | None:
        """``herald_sends_in_flight`` as the worker reports it, or None if it cannot be read."""
        try:
            r = httpx.get(self.metrics_url, timeout=2)
        except httpx.HTTPError:
            return None
        for line in r.text.splitlines():
            if line.startswith("herald_sends_in_flight "):
                return float(line.split()[1])
        return None


def worker_env(url: str, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        {
            "HERALD_DATABASE_URL": url,
            "HERALD_SECRET_KEY": SECRET,
            "HERALD_AUTO_MIGRATE": "false",
            "HERALD_LOG_LEVEL": "warning",
            "HERALD_ALLOW_PRIVATE_URLS": "true",
        }
    )
    env.update({f"HERALD_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()})
    return env


def start_worker(env: dict[str, str], log_dir: str) -> WorkerProcess:
    port = free_port()
    log_path = os.path.join(log_dir, f"worker-{port}.log")
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "herald.cli", "worker"],
            env={**env, "HERALD_WORKER_METRICS_PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    return WorkerProcess(proc, port, log_path)


def wait_healthy(worker: WorkerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited ({worker.proc.returncode}):\n{open(worker.log_path).read()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{worker.metrics_port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError("worker did not become healthy")


def stop_workers(workers: list[WorkerProcess], timeout: float = 60) -> None:
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sink", action="store_true", help="run the webhook sink")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if not args.sink:
        parser.error("this module is used by faults.py, worker_throughput.py and latency.py; --sink runs the sink")
    run_sink(args.port)


if __name__ == "__main__":
    main()
