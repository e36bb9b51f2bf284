#!/usr/bin/env python
"""Trigger → sent latency of single webhook notifications through a separate ``herald worker`` on
PostgreSQL, with the worker woken by LISTEN/NOTIFY (HERALD_PG_NOTIFY=true) and by polling alone (false).

    python bench/latency.py                       # 200 notifications per mode, poll interval 1 s
    python bench/latency.py --count 50 --poll 0.5
  options: --count N  --poll S (HERALD_WORKER_POLL_SECONDS)  --modes notify,poll  --warmup 5

Setup, not measured: a fresh database (the PostgreSQL one named in --pg-url is dropped and
re-created), a webhook account pointing at the healthy sink (webhook_bench.py: 200 at once), a type
sending on it. For each mode one ``herald worker`` is started (HERALD_PG_NOTIFY as the mode says,
HERALD_WORKER_POLL_SECONDS=--poll) and the real HTTP API runs in this process (in-process ASGI
transport, no worker in it; its HERALD_PG_NOTIFY set the same way, since the trigger's transaction
is what notifies).

Measured, one notification at a time: from just before ``POST /v1/notifications`` (one recipient)
until a query on the delivery, repeated every 2 ms over its own connection, sees it ``sent``. Before
each trigger the script waits a random 0–poll seconds, so triggers land at random points of the
worker's poll cycle, as real ones do.

Baseline: the poll interval. A worker that only polls finds a new delivery after about half of it
on average (p50 ≈ poll/2, p99 ≈ poll) plus the send; LISTEN/NOTIFY should take that wait away.
Columns: p50 and p99 in ms, and each as a fraction of the poll interval. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from _support import asyncpg_dsn
from webhook_bench import (
    DEFAULT_PG_URL,
    TYPE_KEY,
    api_client,
    fresh_database,
    load,
    setup_webhook,
    sink_process,
    start_worker,
    stop_workers,
    wait_healthy,
    worker_env,
)

POLL_QUERY_EVERY = 0.002


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def has_pg_notify() -> bool:
    from herald.config import Settings

    return "pg_notify" in Settings.model_fields


async def run_mode(notify: bool, url: str, args: argparse.Namespace, log_dir: str) -> list[float]:
    overrides: dict[str, Any] = {"pg_notify": notify} if has_pg_notify() else {}
    env = worker_env(url, pg_notify=notify, worker_poll_seconds=args.poll)
    worker = start_worker(env, log_dir)
    rng = random.Random(7)
    latencies: list[float] = []
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        wait_healthy(worker)
        async with api_client(url, **overrides) as (_, client):
            for i in range(args.warmup + args.count):
                await asyncio.sleep(rng.uniform(0, args.poll))
                t0 = time.perf_counter()
                r = await client.post("/v1/notifications", json={"type": TYPE_KEY, "to": [f"lat{i % 10}"]})
                assert r.status_code == 202, r.text
                notification_id = r.json()["id"]
                deadline = t0 + max(30.0, args.poll * 5)
                while True:
                    status = await conn.fetchval(
                        "SELECT status FROM deliveries WHERE notification_id = $1", notification_id
                    )
                    if status == "sent":
                        break
                    if status not in ("pending", "sending") or time.perf_counter() > deadline:
                        raise RuntimeError(f"delivery of {notification_id} is {status!r}; see {worker.log_path}")
                    await asyncio.sleep(POLL_QUERY_EVERY)
                if i >= args.warmup:
                    latencies.append(time.perf_counter() - t0)
    finally:
        await conn.close()
        stop_workers([worker])
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--count", type=int, default=200, help="notifications per mode")
    parser.add_argument("--warmup", type=int, default=5, help="notifications per mode not counted")
    parser.add_argument("--poll", type=float, default=1.0, help="HERALD_WORKER_POLL_SECONDS")
    parser.add_argument("--modes", default="notify,poll")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    assert all(m in ("notify", "poll") for m in modes), modes
    if not has_pg_notify():
        print("note: this Herald has no pg_notify setting; both modes poll", flush=True)

    load_before = load()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="herald-bench-logs-") as log_dir, sink_process() as sink:
        async with fresh_database("postgres", args.pg_url) as url:
            async with api_client(url) as (_, client):
                await setup_webhook(client, sink.hook_url, timeout=10)
            sink.reset("healthy")
            for mode in modes:
                results[mode] = await run_mode(mode == "notify", url, args, log_dir)
                lat = results[mode]
                print(
                    f"{mode}: {len(lat)} notifications, p50 {percentile(lat, 0.5) * 1000:.1f} ms, "
                    f"p99 {percentile(lat, 0.99) * 1000:.1f} ms",
                    flush=True,
                )
        report = sink.report()
    assert report["duplicates"] == 0, report

    poll_ms = args.poll * 1000
    print()
    print(
        f"Trigger → sent latency, one webhook notification at a time — postgres, separate `herald worker`, "
        f"HERALD_WORKER_POLL_SECONDS={args.poll:g}, {os.cpu_count()} CPUs, load avg {load_before}→{load()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    head = (
        f"{'HERALD_PG_NOTIFY':>16} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'p50 ÷ poll':>10} {'p99 ÷ poll':>10}"
    )
    print(head)
    print("-" * len(head))
    for mode, lat in results.items():
        p50, p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
        print(
            f"{'true' if mode == 'notify' else 'false':>16} {len(lat):>5} {p50:>8.1f} {p99:>8.1f} "
            f"{statistics.fmean(lat) * 1000:>8.1f} {p50 / poll_ms:>10.3f} {p99 / poll_ms:>10.3f}"
        )
    print(f"baseline: the poll interval, {poll_ms:.0f} ms (polling alone: p50 ≈ poll/2, p99 ≈ poll)")


if __name__ == "__main__":
    asyncio.run(main())
