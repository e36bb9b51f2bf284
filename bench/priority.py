#!/usr/bin/env python
"""Priority lanes: trigger → receiver latency of high-priority webhooks while 100,000 low-priority
ones drain, beside the same latency on an idle queue measured in the same run.

    python bench/priority.py --db postgres            # 100,000 low, 200 high at 10/s per phase (~3 min)
    python bench/priority.py --db sqlite
    python bench/priority.py --db postgres --low 20000 --high 100 --rate 5
  options: --low N  --high N (per phase)  --rate R (high triggers a second)  --concurrency C
           (HERALD_WORKER_CONCURRENCY)  --time-limit S (for the low drain)

Setup, not measured: a fresh database (the PostgreSQL one named in --pg-url is dropped and
re-created), an admin API key written into it, a webhook account pointing at this script's own sink
(a raw ASGI app under uvicorn in a child process on loopback, answering 200 at once), and two types
sending on it: ``bench.low`` (priority low) and ``bench.high`` (priority high). Herald runs as it is
deployed: on PostgreSQL ``herald api`` and one ``herald worker`` (woken by LISTEN/NOTIFY); on SQLite
one ``herald serve`` (API and worker in one process, woken in-process). Every request goes over
loopback HTTP to the API.

Measured, in two phases with the same worker settings:

1. idle (the baseline): the queue is empty; R high-priority notifications a second (one recipient
   each) are triggered, N in all;
2. busy: the worker is stopped, L low-priority deliveries are queued (``POST /v1/notifications`` with
   1,000 recipients each: written in the request, one bulk insert per request), the worker started
   again; once the sink has received 1,000 of them, R high-priority notifications a second, N in all,
   while the low ones drain.

Latency of one high notification: from just before its ``POST /v1/notifications`` (the client's
wall clock) to the sink receiving its webhook (the sink's wall clock, the same machine). Columns:
p50, p99 and max in ms for each phase, and the ratio busy ÷ idle. Target (issue 8): busy p99 ≤ 1 s.
Also printed: how many low deliveries were still queued when the last high one arrived (if none,
the phase did not overlap the drain and says nothing), and the low drain rate. Nothing is asserted
but the counts (every webhook arrives exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from _support import free_port, fresh_postgres, stop_server, wait_until_serving
from webhook_bench import DEFAULT_PG_URL, WEBHOOK_SECRET, load, start_worker, stop_workers, wait_healthy, worker_env

HERE = os.path.dirname(os.path.abspath(__file__))
LOW, HIGH = "bench.low", "bench.high"
LOW_BATCH = 1000  # recipients per low trigger: at most HERALD_INLINE_FANOUT_LIMIT, written in the request
DRAINING_FROM = 1000  # low webhooks received before the busy phase starts


# -- the sink (its own process) ------------------------------------------------------------------


@dataclass
class Sink:
    """Records when each high-priority webhook arrives, and counts the low ones."""

    high: dict[str, float] = field(default_factory=dict)  # "phase:seq" -> arrival (time.time())
    high_duplicates: int = 0
    low: int = 0
    low_first: float | None = None
    low_last: float | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        now = time.time()
        if scope["path"] == "/hook":
            if b'"bench.high"' in body:  # parse only the few high ones
                data = json.loads(body)["data"]["data"]
                key = f"{data['phase']}:{data['seq']}"
                if key in self.high:
                    self.high_duplicates += 1
                self.high.setdefault(key, now)
            else:
                self.low += 1
                self.low_first = self.low_first or now
                self.low_last = now
            await _answer(send, b"ok")
        elif scope["path"] == "/_report":
            report = {
                "high": self.high,
                "high_duplicates": self.high_duplicates,
                "low": self.low,
                "low_first": self.low_first,
                "low_last": self.low_last,
            }
            await _answer(send, json.dumps(report).encode())
        else:
            await _answer(send, b"", 404)


async def _answer(send: Any, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def sink_process() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--sink", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the sink exited"
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base}/_report", timeout=1)
                break
            assert time.monotonic() < deadline, "the sink did not start"
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sink_report(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/_report", timeout=60).json())


# -- Herald's processes -------------------------------------------------------------------------


@dataclass
class Deployment:
    """``herald api`` + ``herald worker`` (PostgreSQL) or ``herald serve`` (SQLite), restartable
    with or without its worker."""

    db: str
    url: str
    concurrency: int
    log_dir: str
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    worker: Any = None  # webhook_bench.WorkerProcess

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, *, embedded_worker: bool) -> dict[str, str]:
        return worker_env(self.url, worker_concurrency=self.concurrency, embedded_worker=embedded_worker)

    def start(self, *, with_worker: bool) -> None:
        if self.db == "sqlite":  # the embedded default: one process, the worker inside the server
            self.stop()
            self._start_server("serve", embedded_worker=with_worker)
        else:
            if self.server is None:
                self._start_server("api", embedded_worker=False)
            if with_worker:
                self.worker = start_worker(self.env(embedded_worker=False), self.log_dir)
                wait_healthy(self.worker)

    def stop_worker(self) -> None:
        if self.db == "sqlite":
            self.stop()
        elif self.worker is not None:
            stop_workers([self.worker])
            self.worker = None

    def stop(self) -> None:
        if self.worker is not None:
            stop_workers([self.worker])
            self.worker = None
        if self.server is not None:
            stop_server(self.server)
            self.server = None

    def _start_server(self, command: str, *, embedded_worker: bool) -> None:
        log = open(os.path.join(self.log_dir, f"{command}-{time.monotonic_ns()}.log"), "ab")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "herald.cli", command, "--port", str(self.port)],
            env=self.env(embedded_worker=embedded_worker),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        wait_until_serving(self.server, self.base, timeout=60)


@contextlib.asynccontextmanager
async def fresh_database(db: str, pg_url: str) -> AsyncIterator[tuple[str, str]]:
    """A migrated database and an admin key written into it."""
    from herald.store.apikeys import create_api_key
    from herald.store.db import create_engine
    from herald.store.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        if db == "postgres":
            url = pg_url
            await fresh_postgres(url)
        else:
            url = f"sqlite+aiosqlite:///{os.path.join(tmp, 'herald.db')}"
        engine = create_engine(url)
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                _, key = await create_api_key(conn, "bench", ["admin"])
        finally:
            await engine.dispose()
        yield url, key


async def set_up(client: httpx.AsyncClient, sink: str) -> None:
    config = {"url": f"{sink}/hook", "secret": WEBHOOK_SECRET, "timeout": 10}
    r = await client.put("/v1/channel-accounts/sink", json={"channel": "webhook", "config": config})
    assert r.status_code in (200, 201), r.text
    for key, priority in ((LOW, "low"), (HIGH, "high")):
        r = await client.put(f"/v1/notification-types/{key}", json={"channels": ["webhook"], "priority": priority})
        assert r.status_code in (200, 201), r.text


async def queue_low(client: httpx.AsyncClient, n: int) -> float:
    started = time.monotonic()
    for start in range(0, n, LOW_BATCH):
        to = [f"low{i:07d}" for i in range(start, min(n, start + LOW_BATCH))]
        r = await client.post("/v1/notifications", json={"type": LOW, "to": to, "data": {"n": start}})
        assert r.status_code == 202, r.text
    return time.monotonic() - started


async def trigger_high(client: httpx.AsyncClient, phase: str, n: int, rate: float) -> dict[str, float]:
    """N high notifications at a steady rate; when each was sent (time.time() before its POST)."""
    sent: dict[str, float] = {}
    start = time.monotonic() + 0.1
    for seq in range(n):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[f"{phase}:{seq}"] = time.time()
        r = await client.post(
            "/v1/notifications", json={"type": HIGH, "to": [f"high{seq % 50}"], "data": {"phase": phase, "seq": seq}}
        )
        assert r.status_code == 202, r.text
    return sent


async def wait_for(sink: str, keys: list[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        report = sink_report(sink)
        if all(k in report["high"] for k in keys) or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Phase:
    name: str
    latencies: list[float]
    missing: int
    low_queued_at_end: int | None = None


def phase_of(name: str, sent: dict[str, float], report: dict[str, Any]) -> Phase:
    arrived = report["high"]
    latencies = [arrived[k] - t for k, t in sent.items() if k in arrived]
    return Phase(name, latencies, sum(1 for k in sent if k not in arrived))


async def run(args: argparse.Namespace) -> None:
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="herald-bench-logs-") as log_dir, sink_process() as sink:
        async with fresh_database(args.db, args.pg_url) as (url, key):
            herald = Deployment(args.db, url, args.concurrency, log_dir)
            headers = {"Authorization": f"Bearer {key}"}
            try:
                herald.start(with_worker=False)
                async with httpx.AsyncClient(base_url=herald.base, headers=headers, timeout=120) as client:
                    await set_up(client, sink)
                herald.start(with_worker=True)
                async with httpx.AsyncClient(base_url=herald.base, headers=headers, timeout=120) as client:
                    sent = await trigger_high(client, "idle", args.high, args.rate)
                idle = phase_of("idle", sent, await wait_for(sink, list(sent), 60))
                print(f"idle: {describe(idle)}", flush=True)

                herald.stop_worker()
                herald.start(with_worker=False)
                async with httpx.AsyncClient(base_url=herald.base, headers=headers, timeout=120) as client:
                    seconds = await queue_low(client, args.low)
                print(f"queued {args.low:,} low-priority deliveries in {seconds:.1f} s", flush=True)
                herald.stop_worker()
                herald.start(with_worker=True)
                while sink_report(sink)["low"] < min(DRAINING_FROM, args.low):
                    await asyncio.sleep(0.1)
                async with httpx.AsyncClient(base_url=herald.base, headers=headers, timeout=120) as client:
                    sent = await trigger_high(client, "busy", args.high, args.rate)
                report = await wait_for(sink, list(sent), 120)
                busy = phase_of("busy", sent, report)
                busy.low_queued_at_end = args.low - report["low"]
                print(f"busy: {describe(busy)}; low still queued: {busy.low_queued_at_end:,}", flush=True)
                deadline = time.monotonic() + args.time_limit
                while report["low"] < args.low and time.monotonic() < deadline:
                    await asyncio.sleep(1.0)
                    report = sink_report(sink)
            finally:
                herald.stop()
    assert report["high_duplicates"] == 0, report["high_duplicates"]
    low_rate = (report["low"] - 1) / max(1e-9, report["low_last"] - report["low_first"]) if report["low"] else 0
    print_table(args, idle, busy, report, low_rate, load_before)


def describe(phase: Phase) -> str:
    if not phase.latencies:
        return f"nothing arrived ({phase.missing} missing)"
    lat = phase.latencies
    return (
        f"{len(lat)} arrived, {phase.missing} missing; p50 {percentile(lat, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
    )


def print_table(
    args: argparse.Namespace, idle: Phase, busy: Phase, report: dict[str, Any], low_rate: float, load_before: str
) -> None:
    deployment = "herald api + 1 herald worker" if args.db == "postgres" else "herald serve (embedded worker)"
    print()
    print(
        f"High-priority trigger → receiver latency, {args.high} at {args.rate:g}/s per phase — {args.db}, "
        f"{deployment}, HERALD_WORKER_CONCURRENCY={args.concurrency}, {os.cpu_count()} CPUs, "
        f"load avg {load_before}→{load()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    head = f"{'queue':<34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(head)
    print("-" * len(head))
    for phase, label in ((idle, "idle (baseline)"), (busy, f"{args.low:,} low draining")):
        lat = phase.latencies or [float("nan")]
        print(
            f"{label:<34} {len(phase.latencies):>5} {percentile(lat, 0.5) * 1000:>8.0f} "
            f"{percentile(lat, 0.99) * 1000:>8.0f} {max(lat) * 1000:>8.0f}"
        )
    if idle.latencies and busy.latencies:
        p50 = percentile(busy.latencies, 0.5) / percentile(idle.latencies, 0.5)
        p99 = percentile(busy.latencies, 0.99) / percentile(idle.latencies, 0.99)
        print(f"ratio busy ÷ idle: p50 {p50:.2f}, p99 {p99:.2f}; target: busy p99 ≤ 1000 ms")
    print(
        f"low: {report['low']:,} of {args.low:,} received, {low_rate:,.0f}/s; still queued when the last high "
        f"arrived: {busy.low_queued_at_end:,}; missing high: idle {idle.missing}, busy {busy.missing}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--low", type=int, default=100_000)
    parser.add_argument("--high", type=int, default=200, help="high-priority notifications per phase")
    parser.add_argument("--rate", type=float, default=10.0, help="high-priority triggers a second")
    parser.add_argument("--concurrency", type=int, default=32, help="HERALD_WORKER_CONCURRENCY")
    parser.add_argument(
        "--time-limit", type=float, default=120.0, help="seconds to wait for the rest of the low drain after the highs"
    )
    args = parser.parse_args()
    if args.sink:
        import uvicorn

        uvicorn.run(Sink(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off")
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
