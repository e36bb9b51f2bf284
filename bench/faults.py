#!/usr/bin/env python
"""Webhook delivery under provider faults: N deliveries through ``herald worker`` processes to a
local sink that is healthy, then faulty; plus, with ``--kill``, a worker killed -9 mid-run.

    python bench/faults.py                                  # PostgreSQL, 20,000 deliveries, 1 worker
    python bench/faults.py --workers 2 --kill
    python bench/faults.py --db sqlite --count 2000
  options: --count N  --workers 1|2  --concurrency C (HERALD_WORKER_CONCURRENCY)  --modes healthy,faulty
           --timeout 2 (webhook account, s)  --hang 5 (s)  --time-limit 600 (s per mode)  --kill  --kill-at 0.5

Setup, not measured: a fresh database (the PostgreSQL one named in --pg-url is dropped and
re-created; SQLite: a temp file), a webhook channel account pointing at the sink (timeout
--timeout), a type sending on it, and N deliveries triggered through the real HTTP API (in-process
ASGI transport, ``to`` lists of 1000 users). Then ``herald worker`` processes start, with
HERALD_RETRY_BASE_SECONDS=0.2, HERALD_RETRY_MAX_SECONDS=2, HERALD_MAX_ATTEMPTS=1000 (nothing fails
for good) and HERALD_LEASE_SECONDS=10, and run until every delivery is ``sent`` or the time limit.

Measured: deliveries/s = deliveries the sink answered 2xx ÷ the time from the sink's first request
to the first 2xx of the last delivery (worker start-up is left out). The baseline is the same run
against the healthy sink: ratio = faulty ÷ healthy. Also counted: duplicates (webhook-ids that got
more than one 2xx) and stuck rows (not ``sent`` at the end). With ``--kill``: once ``--kill-at`` of
the deliveries are sent, one worker is killed with SIGKILL and a new one started; the sends it had
in flight (its ``herald_sends_in_flight`` just before, and the rows it held leased) are reported.
Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from webhook_bench import (
    DEFAULT_PG_URL,
    SinkProcess,
    StatusPoller,
    WorkerProcess,
    api_client,
    delivery_statuses,
    fresh_database,
    load,
    setup_webhook,
    sink_process,
    start_worker,
    stop_workers,
    trigger_many,
    worker_env,
)


async def run_mode(mode: str, args: argparse.Namespace, sink: SinkProcess, log_dir: str) -> dict[str, Any]:
    n = args.count
    async with fresh_database(args.db, args.pg_url) as url:
        t = time.perf_counter()
        async with api_client(url) as (_, client):
            await setup_webhook(client, sink.hook_url, timeout=args.timeout)
            await trigger_many(client, n)
        print(f"{mode}: {n:,} deliveries triggered on {args.db} in {time.perf_counter() - t:.1f} s (not measured)")
        sink.reset(mode, seed=args.seed, hang_seconds=args.hang)
        env = worker_env(
            url,
            worker_concurrency=args.concurrency,
            retry_base_seconds=0.2,
            retry_max_seconds=2,
            max_attempts=1000,
            lease_seconds=args.lease,
        )
        poller = StatusPoller(url)
        workers: list[WorkerProcess] = [start_worker(env, log_dir) for _ in range(args.workers)]
        started = time.monotonic()
        kill: dict[str, Any] | None = None
        sent = 0
        try:
            while True:
                sent = await poller.sent()
                if sent >= n or time.monotonic() - started > args.time_limit:
                    break
                for w in workers:
                    if w.proc.poll() is not None and (kill is None or w.proc.pid != kill["pid"]):
                        raise RuntimeError(f"a worker exited ({w.proc.returncode}); see {w.log_path}")
                if args.kill and kill is None and sent >= n * args.kill_at:
                    victim = workers[0]
                    in_flight = victim.in_flight()
                    leased = await poller.leased_by_pid(victim.proc.pid)
                    victim.proc.kill()
                    victim.proc.wait()
                    kill = {"pid": victim.proc.pid, "in_flight": in_flight, "leased": leased, "sent_before": sent}
                    workers[0] = start_worker(env, log_dir)
                    print(
                        f"{mode}: killed worker {victim.proc.pid} at {sent:,} sent: herald_sends_in_flight "
                        f"{in_flight if in_flight is not None else 'n/a'}, {leased} rows leased; started a new one",
                        flush=True,
                    )
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            stop_workers(workers)
            await poller.close()
        statuses = await delivery_statuses(url)
    report = sink.report()
    span = (report["last_new_ok_at"] or 0) - (report["first_at"] or 0)
    rate = report["ok_ids"] / span if span > 0 else 0.0
    stuck = n - statuses.get("sent", 0)
    print(
        f"{mode}: {report['ok_ids']:,} delivered in {span:.2f} s = {rate:,.0f}/s "
        f"({elapsed:.1f} s wall incl. worker start-up); {report['requests']:,} requests {report['statuses']}; "
        f"duplicates {report['duplicates']}; stuck {stuck} {statuses}",
        flush=True,
    )
    return {"mode": mode, "rate": rate, "span": span, "report": report, "stuck": stuck, "kill": kill}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--workers", type=int, choices=[1, 2], default=1)
    parser.add_argument("--concurrency", type=int, default=64, help="HERALD_WORKER_CONCURRENCY")
    parser.add_argument("--modes", default="healthy,faulty")
    parser.add_argument("--timeout", type=float, default=2.0, help="the webhook account's timeout, seconds")
    parser.add_argument("--hang", type=float, default=5.0, help="how long a hanging answer is held, seconds")
    parser.add_argument("--lease", type=float, default=10.0, help="HERALD_LEASE_SECONDS")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per mode before giving up")
    parser.add_argument("--kill", action="store_true", help="kill -9 one worker mid-run and start a new one")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction of deliveries sent before the kill")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    assert all(m in ("healthy", "faulty") for m in modes), modes

    load_before = load()
    results = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-logs-") as log_dir, sink_process() as sink:
        for mode in modes:
            results.append(await run_mode(mode, args, sink, log_dir))

    print()
    print(
        f"Webhook deliveries through `herald worker` — {args.db}, {args.count:,} deliveries, "
        f"{args.workers} worker(s) × concurrency {args.concurrency}, webhook timeout {args.timeout:g} s, "
        f"{os.cpu_count()} CPUs, load avg {load_before}→{load()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    head = f"{'sink':>8} {'deliveries/s':>13} {'seconds':>8} {'requests':>9} {'500s':>6} {'hangs':>6}"
    head += f" {'dupes':>6} {'stuck':>6}"
    if args.kill:
        head += f" {'in flight at kill':>18} {'leased at kill':>15}"
    print(head)
    print("-" * len(head))
    for r in results:
        rep = r["report"]
        line = (
            f"{r['mode']:>8} {r['rate']:>13,.0f} {r['span']:>8.2f} {rep['requests']:>9,} "
            f"{rep['statuses'].get('500', 0):>6,} {rep['statuses'].get('0', 0):>6,} "
            f"{rep['duplicates']:>6} {r['stuck']:>6}"
        )
        if args.kill:
            k = r["kill"] or {}
            flight = k.get("in_flight")
            line += f" {('n/a' if flight is None else f'{flight:g}'):>18} {k.get('leased', 'n/a'):>15}"
        print(line)
    rates = {r["mode"]: r["rate"] for r in results}
    if rates.get("healthy") and "faulty" in rates:
        print(f"ratio faulty ÷ healthy = {rates['faulty'] / rates['healthy']:.2f} (target >= 0.5)")


if __name__ == "__main__":
    asyncio.run(main())
