#!/usr/bin/env python
"""Webhook throughput of ``herald worker`` against a raw httpx client, to the same healthy sink.

    python bench/worker_throughput.py                        # PostgreSQL, 20,000 deliveries, 1 and 2 workers
    python bench/worker_throughput.py --count 5000 --workers 1
  options: --count N  --workers 1,2  --concurrency C (HERALD_WORKER_CONCURRENCY, and the baseline's)

Setup, not measured: a fresh database (the PostgreSQL one named in --pg-url is dropped and
re-created), a webhook account pointing at the sink (webhook_bench.py, healthy mode: 200 at once),
a type sending on it, and N deliveries triggered through the real HTTP API. Then W ``herald worker``
processes (HERALD_WORKER_CONCURRENCY=C) run until every delivery is ``sent``.

Herald's figure: deliveries/s = N ÷ the time from the sink's first request to the first 2xx of the
last delivery (process start-up is left out; every claim, send and record is in).

Baseline, same run, same sink: W client processes, each an ``httpx.AsyncClient`` (as Herald's
webhook channel configures it) with C concurrent tasks, POST N bodies between them of the size
Herald's were, each JSON-encoded and signed per Standard Webhooks (HMAC-SHA256) as it is sent. Its
figure is taken from the sink the same way. ratio = Herald ÷ baseline. Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from webhook_bench import (
    DEFAULT_PG_URL,
    HERE,
    WEBHOOK_SECRET,
    SinkProcess,
    StatusPoller,
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

from herald.channels._http import pool_limits

WEBHOOK_TIMEOUT = 10.0


def rate_of(report: dict[str, Any]) -> tuple[float, float]:
    span = (report["last_new_ok_at"] or 0) - (report["first_at"] or 0)
    return (report["ok_ids"] / span if span > 0 else 0.0), span


async def run_herald(args: argparse.Namespace, workers: int, sink: SinkProcess, log_dir: str) -> dict[str, Any]:
    n = args.count
    async with fresh_database("postgres", args.pg_url) as url:
        async with api_client(url) as (_, client):
            await setup_webhook(client, sink.hook_url, timeout=WEBHOOK_TIMEOUT)
            await trigger_many(client, n)
        sink.reset("healthy")
        env = worker_env(url, worker_concurrency=args.concurrency)
        poller = StatusPoller(url)
        procs = [start_worker(env, log_dir) for _ in range(workers)]
        started = time.monotonic()
        try:
            while await poller.sent() < n:
                if time.monotonic() - started > args.time_limit:
                    break
                for w in procs:
                    if w.proc.poll() is not None:
                        raise RuntimeError(f"a worker exited ({w.proc.returncode}); see {w.log_path}")
                await asyncio.sleep(0.1)
        finally:
            stop_workers(procs)
            await poller.close()
        statuses = await delivery_statuses(url)
    report = sink.report()
    rate, span = rate_of(report)
    print(
        f"Herald, {workers} worker(s): {report['ok_ids']:,} sent in {span:.2f} s = {rate:,.0f}/s; "
        f"{report['requests']:,} requests, {report['body_bytes']} bytes a body; {statuses}",
        flush=True,
    )
    return {"rate": rate, "span": span, "body_bytes": report["body_bytes"], "stuck": n - statuses.get("sent", 0)}


def run_baseline(args: argparse.Namespace, processes: int, body_bytes: int, sink: SinkProcess) -> dict[str, Any]:
    sink.reset("healthy")
    share = [args.count // processes + (1 if i < args.count % processes else 0) for i in range(processes)]
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "worker_throughput.py"),
                "--client",
                sink.hook_url,
                "--count",
                str(k),
                "--concurrency",
                str(args.concurrency),
                "--body-bytes",
                str(body_bytes),
                "--offset",
                str(i),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for i, k in enumerate(share)
    ]
    for c in clients:  # every client has its bodies' template and its pool ready: start together
        assert c.stdout is not None and c.stdout.readline().strip() == b"ready"
    for c in clients:
        assert c.stdin is not None
        c.stdin.write(b"go\n")
        c.stdin.flush()
    cpu = 0.0
    for c in clients:
        assert c.wait(timeout=args.time_limit) == 0
        assert c.stdout is not None
        for line in c.stdout.read().decode().splitlines():  # "cpu S": its CPU seconds from "go" to the end
            if line.startswith("cpu "):
                cpu += float(line.split()[1])
    report = sink.report()
    rate, span = rate_of(report)
    print(
        f"baseline, {processes} client process(es): {report['ok_ids']:,} posted in {span:.2f} s = {rate:,.0f}/s",
        flush=True,
    )
    return {"rate": rate, "span": span, "cpu": cpu}


# -- the baseline client (its own process) --------------------------------------------------------


async def client_main(url: str, count: int, concurrency: int, body_bytes: int, offset: int) -> None:
    from herald.channels.webhook import USER_AGENT, sign

    pad = 0

    def body_for(i: int) -> tuple[str, bytes]:
        msg_id = f"dlv_base{offset}_{i:08d}"
        now = datetime.now(UTC)
        payload = {
            "type": "notification.delivery",
            "timestamp": now.isoformat(),
            "data": {"delivery_id": msg_id, "recipient": {"id": f"user{i:07d}"}, "pad": "x" * pad},
        }
        return msg_id, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    pad = max(0, body_bytes - len(body_for(0)[1]))
    next_i = iter(range(count))
    failures = 0

    async with httpx.AsyncClient(follow_redirects=False, limits=pool_limits()) as client:  # as Herald's channels

        async def post_loop() -> None:
            nonlocal failures
            for i in next_i:
                msg_id, body = body_for(i)
                ts = int(time.time())
                headers = {
                    "user-agent": USER_AGENT,
                    "content-type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": sign(WEBHOOK_SECRET, msg_id, ts, body),
                }
                r = await client.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
                failures += not 200 <= r.status_code < 300

        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        await asyncio.gather(*(post_loop() for _ in range(concurrency)))
        print(f"cpu {time.process_time() - cpu:.3f}", flush=True)
    if failures:
        print(f"{failures} posts not answered 2xx", file=sys.stderr)


# -- main ----------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated numbers of worker processes")
    parser.add_argument("--concurrency", type=int, default=64, help="HERALD_WORKER_CONCURRENCY and the baseline's")
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--body-bytes", type=int, default=400, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        await client_main(args.client, args.count, args.concurrency, args.body_bytes, args.offset)
        return
    counts = [int(w) for w in args.workers.split(",") if w]

    load_before = load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-logs-") as log_dir, sink_process() as sink:
        for workers in counts:
            h = await run_herald(args, workers, sink, log_dir)
            b = run_baseline(args, workers, h["body_bytes"], sink)
            rows.append((workers, h, b))

    print()
    print(
        f"Webhook sends, `herald worker` vs raw httpx — postgres, {args.count:,} deliveries, concurrency "
        f"{args.concurrency} per process, {os.cpu_count()} CPUs, load avg {load_before}→{load()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    head = f"{'processes':>9} {'Herald/s':>9} {'Herald s':>9} {'baseline/s':>11} {'baseline s':>11}"
    head += f" {'ratio':>6} {'stuck':>6}"
    print(head)
    print("-" * len(head))
    for workers, h, b in rows:
        ratio = h["rate"] / b["rate"] if b["rate"] else 0.0
        print(
            f"{workers:>9} {h['rate']:>9,.0f} {h['span']:>9.2f} {b['rate']:>11,.0f} {b['span']:>11.2f} "
            f"{ratio:>6.2f} {h['stuck']:>6}"
        )
    print("ratio = Herald deliveries/s ÷ raw httpx posts/s (target >= 0.5)")


if __name__ == "__main__":
    asyncio.run(main())
