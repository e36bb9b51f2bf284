"""Realtime streams on one process: N concurrent SSE connections, memory per connection, trigger -> receive
latency for one user under that load, and the time one announcement takes to reach all N.

Herald (``create_app``, run like ``herald api``: uvicorn, no embedded worker) is measured beside a baseline
in the same run: a minimal Starlette app whose SSE endpoint is a StreamingResponse fed by one asyncio.Queue
per connection, with an in-memory "send to one user" and "broadcast" (no auth, no database, no backplane).
Each server runs in its own process; the N connections are held by several client processes (raw asyncio
sockets, a few KiB each), so neither side's memory is mixed with the other's.

    python bench/realtime.py                       # N = 10,000 on SQLite (about 3 minutes)
    python bench/realtime.py --connections 2000 --probes 100
    python bench/realtime.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench \\
        --redis-url redis://127.0.0.1:6379/15    # PostgreSQL, Redis backplane

See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _support import free_port

SECRET = "bench-realtime-secret-key-0123456789abcdef"
RAMP_BATCH = 250  # connections opened at once by each client process


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- servers -----------------------------------------------------------------------------------------


def baseline_app() -> Any:
    """The least an SSE server can be: one queue per connection, events put straight into them."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    queues: dict[str, set[asyncio.Queue[bytes]]] = {}

    async def events(request: Request) -> StreamingResponse:
        user = request.query_params["user"]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        queues.setdefault(user, set()).add(queue)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"event: ready\ndata: {}\n\n"
                while True:
                    yield await queue.get()
            finally:
                queues[user].discard(queue)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def send(request: Request) -> Response:
        frame = b"event: inbox.new\ndata: " + await request.body() + b"\n\n"
        for queue in queues.get(request.query_params["user"], ()):
            queue.put_nowait(frame)
        return Response(status_code=202)

    async def broadcast(request: Request) -> Response:
        frame = b"event: announcement.new\ndata: " + await request.body() + b"\n\n"
        for user_queues in queues.values():
            for queue in user_queues:
                queue.put_nowait(frame)
        return Response(status_code=202)

    return Starlette(
        routes=[
            Route("/events", events),
            Route("/send", send, methods=["POST"]),
            Route("/broadcast", broadcast, methods=["POST"]),
        ]
    )


def serve(kind: str, port: int, database_url: str, redis_url: str | None) -> None:
    """The server process (``--serve``): raise the fd limit, then uvicorn as ``herald api`` runs it."""
    import uvicorn

    raise_fd_limit()
    if kind == "herald":
        from herald.app import create_app
        from herald.config import Settings

        settings = Settings(
            database_url=database_url, secret_key=SECRET, redis_url=redis_url, auto_migrate=False, log_level="warning"
        )
        app = create_app(settings, run_worker=False)
    else:
        app = baseline_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


@dataclass
class Server:
    kind: str
    base: str
    proc: subprocess.Popen[bytes]


@asynccontextmanager
async def running(kind: str, args: argparse.Namespace, database_url: str) -> AsyncIterator[Server]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--database-url", database_url]
    if args.redis_url:
        cmd += ["--redis-url", args.redis_url]
    proc = subprocess.Popen(cmd)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    await client.get(base + ("/healthz" if kind == "herald" else "/nothing"))
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None, f"{kind} server exited"
                    await asyncio.sleep(0.1)
        yield Server(kind, base, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- clients -----------------------------------------------------------------------------------------


class Connection:
    """One SSE connection over a raw socket: a few KiB on the client side, so many fit in one process."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.arrivals: dict[str, float] = {}  # event name -> first arrival (time.monotonic)
        self.waiters: dict[str, asyncio.Event] = {}

    @classmethod
    async def open(cls, port: int, path: str) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    def waiter(self, event: str) -> asyncio.Event:
        """Set once ``event`` arrives, or already set when it arrived before anyone waited for it (with
        more than one batch of connections per client, early streams read ``ready`` before the waiters
        exist: without this the client waited forever at N > clients x RAMP_BATCH)."""
        waiter = self.waiters.setdefault(event, asyncio.Event())
        if event in self.arrivals:
            waiter.set()
        return waiter

    async def read_forever(self) -> None:
        try:
            while line := await self.reader.readline():
                if line.startswith(b"event: "):
                    name = line[7:].strip().decode()
                    self.arrivals.setdefault(name, time.monotonic())
                    if name in self.waiters:
                        self.waiters[name].set()
        except (ConnectionError, asyncio.CancelledError):
            pass

    def close(self) -> None:
        self.writer.close()


def stream_path(kind: str, user: str, token: str | None) -> str:
    return f"/v1/me/events?token={token}" if kind == "herald" else f"/events?user={user}"


def client_process(kind: str, port: int, paths: list[str], ready: Any, results: Any, done: Any) -> None:
    """Holds ``paths`` open; reports when all are ready, then the arrival times of announcement.new."""
    raise_fd_limit()

    async def run() -> None:
        connections: list[Connection] = []
        readers: list[asyncio.Task[None]] = []
        failed = 0
        for start in range(0, len(paths), RAMP_BATCH):
            batch = await asyncio.gather(
                *(Connection.open(port, p) for p in paths[start : start + RAMP_BATCH]), return_exceptions=True
            )
            for conn in batch:
                if isinstance(conn, Connection):
                    connections.append(conn)
                    readers.append(asyncio.create_task(conn.read_forever()))
                else:
                    failed += 1
        await asyncio.gather(*(c.waiter("ready").wait() for c in connections))
        ready.put((len(connections), failed))
        # every stream's announcement, or what arrived by the deadline (the missing ones are counted)
        waits = [asyncio.ensure_future(c.waiter("announcement.new").wait()) for c in connections]
        await asyncio.wait(waits, timeout=120)
        results.put([c.arrivals.get("announcement.new") for c in connections])
        await asyncio.to_thread(done.wait)
        for conn in connections:
            conn.close()
        for task in readers:
            task.cancel()

    asyncio.run(run())


@dataclass
class Figures:
    connections: int
    failed: int
    connect_seconds: float
    kib_per_connection: float
    latency_ms: list[float]
    broadcast_last_ms: float
    broadcast_median_ms: float
    broadcast_missed: int = 0


async def measure(server: Server, args: argparse.Namespace, tokens: dict[str, str], keys: dict[str, str]) -> Figures:
    kind, port = server.kind, int(server.base.rsplit(":", 1)[1])
    users = [f"u{n}" for n in range(args.connections)]
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
        # warm up (imports, JWT, the first database reads): a few connections opened and closed
        for user in users[:5]:
            warm = await Connection.open(port, stream_path(kind, user, tokens.get(user)))
            warm.close()
        await asyncio.sleep(1)
        rss_before = rss_kib(server.proc.pid)

        ctx = mp.get_context("spawn")
        ready, results, done = ctx.Queue(), ctx.Queue(), ctx.Event()
        shares = [users[i :: args.clients] for i in range(args.clients)]
        started = time.monotonic()
        procs = [
            ctx.Process(
                target=client_process,
                args=(kind, port, [stream_path(kind, u, tokens.get(u)) for u in share], ready, results, done),
            )
            for share in shares
        ]
        for proc in procs:
            proc.start()
        opened = failed = 0
        for _ in procs:
            n, f = await asyncio.to_thread(ready.get, True, 600)
            opened, failed = opened + n, failed + f
        connect_seconds = time.monotonic() - started
        print(f"  {kind}: {opened} streams open ({failed} failed) in {connect_seconds:.1f} s", flush=True)
        await asyncio.sleep(2)  # let the server settle (garbage, buffers)
        rss_after = rss_kib(server.proc.pid)

        # trigger -> receive for one user, under the load of N open streams
        probe = await Connection.open(port, stream_path(kind, "probe", tokens.get("probe")))
        probe_reader = asyncio.create_task(probe.read_forever())
        await probe.waiter("ready").wait()
        latencies = []
        for n in range(args.probes):
            probe.arrivals.pop("inbox.new", None)
            arrived = probe.waiter("inbox.new")
            arrived.clear()
            sent = time.monotonic()
            if kind == "herald":
                r = await http.post(
                    "/v1/notifications",
                    json={"type": "bench.rt", "to": ["probe"], "data": {"n": n}},
                    headers={"Authorization": f"Bearer {keys['send']}"},
                )
            else:
                r = await http.post("/send?user=probe", content=json.dumps({"n": n}))
            assert r.status_code == 202, r.text
            await asyncio.wait_for(arrived.wait(), 30)
            latencies.append((probe.arrivals["inbox.new"] - sent) * 1000)
        probe_reader.cancel()
        probe.close()
        print(f"  {kind}: {len(latencies)} triggers to the probe user received", flush=True)

        # one announcement to everyone: until the last of N streams has it
        sent = time.monotonic()
        if kind == "herald":
            r = await http.post(
                "/v1/announcements",
                json={"title": "bench", "audience": {"all": True}},
                headers={"Authorization": f"Bearer {keys['admin']}"},
            )
            assert r.status_code == 201, r.text
        else:
            r = await http.post("/broadcast", content=b'{"title":"bench"}')
        arrivals: list[float | None] = []
        for _ in procs:
            arrivals += await asyncio.to_thread(results.get, True, 600)
        done.set()
        missed = sum(a is None for a in arrivals)
        print(f"  {kind}: announcement reached {len(arrivals) - missed} of {len(arrivals)} streams", flush=True)
        for proc in procs:
            await asyncio.to_thread(proc.join, 60)
    delays = sorted((a - sent) * 1000 for a in arrivals if a is not None) or [float("nan")]
    return Figures(
        connections=opened,
        failed=failed,
        connect_seconds=connect_seconds,
        kib_per_connection=(rss_after - rss_before) / max(opened, 1),
        latency_ms=latencies,
        broadcast_last_ms=delays[-1],
        broadcast_median_ms=statistics.median(delays),
        broadcast_missed=missed,
    )


async def prepare_herald(database_url: str, users: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Migrate, two API keys; a user token per user (the users themselves need no row)."""
    from herald.config import Settings
    from herald.engine.service import Herald
    from herald.engine.tokens import mint_user_token
    from herald.store.apikeys import create_api_key

    herald = Herald(Settings(database_url=database_url, secret_key=SECRET, auto_migrate=False))
    try:
        await herald.migrate()
        async with herald.db.write() as conn:
            _, admin = await create_api_key(conn, "admin", ["admin"])
            _, send = await create_api_key(conn, "send", ["send"])
    finally:
        await herald.close()
    tokens = {u: mint_user_token(SECRET, u, 3 * 3600)[0] for u in users}
    return {"admin": admin, "send": send}, tokens


async def put_type(base: str, admin: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as client:
        r = await client.put("/v1/notification-types/bench.rt", json={"channels": ["inapp"]})
        assert r.status_code in (200, 201), r.text
        r = await client.put("/v1/notification-types/bench.rt/templates/inapp", json={"title": "n=${n}"})
        assert r.status_code == 200, r.text


def report(n: int, herald: Figures, baseline: Figures) -> None:
    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]

    rows = [
        ("connections held", f"{herald.connections}", f"{baseline.connections}", None),
        ("refused / failed", f"{herald.failed}", f"{baseline.failed}", None),
        ("announcement missed (after 120 s)", f"{herald.broadcast_missed}", f"{baseline.broadcast_missed}", None),
        (
            "time to open all (s)",
            f"{herald.connect_seconds:.1f}",
            f"{baseline.connect_seconds:.1f}",
            herald.connect_seconds / baseline.connect_seconds,
        ),
        (
            "memory per connection (KiB, RSS delta / N)",
            f"{herald.kib_per_connection:.1f}",
            f"{baseline.kib_per_connection:.1f}",
            herald.kib_per_connection / baseline.kib_per_connection,
        ),
        (
            "one user: trigger -> receive p50 (ms)",
            f"{pct(herald.latency_ms, 50):.1f}",
            f"{pct(baseline.latency_ms, 50):.1f}",
            pct(herald.latency_ms, 50) / pct(baseline.latency_ms, 50),
        ),
        (
            "one user: trigger -> receive p99 (ms)",
            f"{pct(herald.latency_ms, 99):.1f}",
            f"{pct(baseline.latency_ms, 99):.1f}",
            pct(herald.latency_ms, 99) / pct(baseline.latency_ms, 99),
        ),
        (
            "one announcement -> all N, median (ms)",
            f"{herald.broadcast_median_ms:.0f}",
            f"{baseline.broadcast_median_ms:.0f}",
            herald.broadcast_median_ms / baseline.broadcast_median_ms,
        ),
        (
            "one announcement -> all N, last (ms)",
            f"{herald.broadcast_last_ms:.0f}",
            f"{baseline.broadcast_last_ms:.0f}",
            herald.broadcast_last_ms / baseline.broadcast_last_ms,
        ),
    ]
    print(f"\nN = {n} SSE connections on one server process; load average {open('/proc/loadavg').read().strip()}")
    print(f"{'':44} {'Herald':>10} {'baseline':>10} {'ratio':>7}")
    for name, h, b, ratio in rows:
        print(f"{name:44} {h:>10} {b:>10} {'' if ratio is None else f'{ratio:7.2f}'}")
    print("(ratio = Herald / baseline: lower is better for every row but 'connections held')")


async def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
    users = [f"u{n}" for n in range(args.connections)] + ["probe"]
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        keys, tokens = await prepare_herald(database_url, users)
        figures: dict[str, Figures] = {}
        for kind in ("baseline", "herald"):
            async with running(kind, args, database_url) as server:
                if kind == "herald":
                    await put_type(server.base, keys["admin"])
                print(f"{kind}: opening {args.connections} streams with {args.clients} client processes...", flush=True)
                figures[kind] = await measure(server, args, tokens, keys)
        report(args.connections, figures["herald"], figures["baseline"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4, help="client processes holding the connections")
    parser.add_argument("--probes", type=int, default=200, help="triggers to the probe user (latency samples)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default=None, help="Herald's backplane (default: in-process)")
    parser.add_argument("--serve", choices=["herald", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve, arguments.port, arguments.database_url, arguments.redis_url)
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        asyncio.run(main(arguments))
