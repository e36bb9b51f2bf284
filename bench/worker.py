#!/usr/bin/env python
"""``herald worker`` against raw httpx to the same webhook sink, what each costs in CPU, and how
many tuples the claim reads per delivery.

    python bench/worker.py                                  # PostgreSQL, 20,000 deliveries, 1 then 2 workers
    python bench/worker.py --count 5000 --workers 1
    python bench/worker.py --count 1000000 --workers 2 --samples 10 --no-baseline   # the claim over a long run
  options: --count N  --workers 1,2  --concurrency C (default 64)  --samples K  --no-baseline  --time-limit S

Setup, not measured: as worker_throughput.py (a fresh database, the PostgreSQL one named in
--pg-url dropped and re-created; a webhook account pointing at the sink, healthy mode; a type
sending on it; N deliveries triggered through the real HTTP API).

Herald: W ``herald worker`` processes (HERALD_WORKER_CONCURRENCY=C) deliver the N webhooks.
Baseline, same run, same sink: W client processes, each one ``httpx.AsyncClient`` configured as
Herald's webhook channel configures its own, with C concurrent tasks, POSTing N signed bodies of the
size Herald's were (worker_throughput.py's client). Both rates come from the sink's clock: ids
answered 2xx ÷ the time from its first request to the first 2xx of the last id. ratio = Herald ÷
baseline; "vs 1" = the rate with W processes ÷ the rate with 1, for each.

CPU, per delivery, over the timed part (from the first 2xx to the last): the worker processes, the
PostgreSQL backends connected to the bench database (the workers' pooled connections), and the
sink; for the baseline, its client processes and the sink. On a machine with fewer cores than
these processes, the sum is what bounds the rate.

Tuples read: PostgreSQL's statistics for ``deliveries``, sampled K times over the run: per
delivery sent in each window, the tuples the claim's partial index ``ix_deliveries_due`` handed
out (``pg_stat_user_indexes.idx_tup_read``; entries already marked dead are skipped without being
counted), the pages of that index the scans touched (``pg_statio_user_indexes``: what a walk over
dead entries costs even when they are not counted as tuples), and every tuple read from the table
(``pg_stat_user_tables.seq_tup_read + idx_tup_fetch``: the claim, the settle, everything), with
the dead tuples and the vacuum runs (auto and manual) at each point. The server's ``autovacuum``
setting and the table's storage parameters (migration 0008) are printed first: with autovacuum off
server-wide, the per-table settings cannot turn it on. Progress is read from the sink, never by
counting rows, so the bench adds no reads of its own. Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from _support import asyncpg_dsn
from webhook_bench import (
    DEFAULT_PG_URL,
    SinkProcess,
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
from worker_throughput import WEBHOOK_TIMEOUT, rate_of, run_baseline

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


@dataclass
class Point:
    """The table's statistics when ``sent`` deliveries had been answered."""

    sent: int
    at: float
    claim_tup_read: int
    claim_blocks: int
    table_tup_read: int
    dead: int
    autovacuums: int


class TableStats:
    """Reads PostgreSQL's statistics for ``deliveries`` over its own connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> TableStats:
        return cls(await asyncpg.connect(asyncpg_dsn(url)))

    async def point(self, sent: int) -> Point:
        row = await self.conn.fetchrow(
            """
            SELECT i.idx_tup_read AS claim_tup_read,
                   b.idx_blks_hit + b.idx_blks_read AS claim_blocks,
                   t.seq_tup_read + coalesce(t.idx_tup_fetch, 0) AS table_tup_read,
                   t.n_dead_tup AS dead, t.autovacuum_count + t.vacuum_count AS autovacuums
            FROM pg_stat_user_tables t
            JOIN pg_stat_user_indexes i ON i.relid = t.relid AND i.indexrelname = 'ix_deliveries_due'
            JOIN pg_statio_user_indexes b ON b.indexrelid = i.indexrelid
            WHERE t.relname = 'deliveries'
            """
        )
        assert row is not None
        return Point(
            sent,
            time.monotonic(),
            row["claim_tup_read"],
            row["claim_blocks"],
            row["table_tup_read"],
            row["dead"],
            row["autovacuums"],
        )

    async def vacuum_settings(self) -> str:
        on = await self.conn.fetchval("SHOW autovacuum")
        options = await self.conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'")
        return f"autovacuum = {on}; deliveries: {', '.join(options or ['defaults'])}"

    async def backend_pids(self) -> list[int]:
        """The other sessions on this database: the workers' pooled connections."""
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [r["pid"] for r in rows]

    async def close(self) -> None:
        await self.conn.close()


@dataclass
class HeraldRun:
    workers: int
    rate: float
    span: float
    body_bytes: int
    stuck: int
    cpu: dict[str, float]
    points: list[Point] = field(default_factory=list)


async def run_herald(args: argparse.Namespace, workers: int, sink: SinkProcess, log_dir: str) -> HeraldRun:
    n = args.count
    async with fresh_database("postgres", args.pg_url) as url:
        async with api_client(url) as (_, client):
            await setup_webhook(client, sink.hook_url, timeout=WEBHOOK_TIMEOUT)
            await trigger_many(client, n)
        stats = await TableStats.connect(url)
        print(f"  {await stats.vacuum_settings()}", flush=True)
        sink.reset("healthy")
        env = worker_env(url, worker_concurrency=args.concurrency)
        procs = [start_worker(env, log_dir) for _ in range(workers)]
        marks = [n * k // args.samples for k in range(1, args.samples + 1)]
        points: list[Point] = []
        cpu: dict[str, float] = {}
        backends: list[int] = []
        started = time.monotonic()
        try:
            while True:
                done = int(sink.progress()["ok_ids"])
                if not points and done > 0:  # the timed part starts: CPU and statistics from here
                    backends = await stats.backend_pids()
                    cpu = {
                        "workers": -cpu_of([w.proc.pid for w in procs]),
                        "postgres": -cpu_of(backends),
                        "sink": -cpu_seconds(sink.proc.pid),
                    }
                    points.append(await stats.point(done))
                if done >= n:
                    cpu["workers"] += cpu_of([w.proc.pid for w in procs])
                    cpu["postgres"] += cpu_of(backends)
                    cpu["sink"] += cpu_seconds(sink.proc.pid)
                    break
                while points and marks and done >= marks[0] and marks[0] < n:
                    points.append(await stats.point(done))
                    marks.pop(0)
                    print(f"  {describe(points[-2], points[-1])}", flush=True)
                if time.monotonic() - started > args.time_limit:
                    print(f"  time limit: {done:,} of {n:,} sent", flush=True)
                    break
                for w in procs:
                    if w.proc.poll() is not None:
                        raise RuntimeError(f"a worker exited ({w.proc.returncode}); see {w.log_path}")
                await asyncio.sleep(0.2 if n <= 100_000 else 1.0)
            await asyncio.sleep(2.0)  # backends flush their statistics within a second of going idle
            if points:
                points.append(await stats.point(done))
                print(f"  {describe(points[-2], points[-1])}", flush=True)
        finally:
            stop_workers(procs)
            await stats.close()
        statuses = await delivery_statuses(url)
    report = sink.report()
    rate, span = rate_of(report)
    print(
        f"Herald, {workers} worker(s): {report['ok_ids']:,} sent in {span:.2f} s = {rate:,.0f}/s; "
        f"{report['requests']:,} requests, {report['body_bytes']} bytes a body; {statuses}",
        flush=True,
    )
    return HeraldRun(workers, rate, span, report["body_bytes"], n - statuses.get("sent", 0), cpu, points)


def per_delivery(a: Point, b: Point) -> tuple[int, float, float, float, float]:
    """Deliveries sent between two points, seconds, and per delivery: claim-index tuples, claim-index
    pages (buffer hits and reads), whole-table tuples."""
    sent = b.sent - a.sent
    claim = (b.claim_tup_read - a.claim_tup_read) / max(1, sent)
    pages = (b.claim_blocks - a.claim_blocks) / max(1, sent)
    table = (b.table_tup_read - a.table_tup_read) / max(1, sent)
    return sent, b.at - a.at, claim, pages, table


def describe(a: Point, b: Point) -> str:
    sent, seconds, claim, pages, table = per_delivery(a, b)
    return (
        f"sent {b.sent:>9,}: window {sent:>8,} in {seconds:6.1f} s; per delivery: claim index {claim:8.1f} "
        f"tuples, {pages:6.2f} pages, table {table:8.1f}; dead tuples {b.dead:>9,}; vacuums {b.autovacuums}"
    )


def print_points(run: HeraldRun) -> None:
    if len(run.points) < 2:
        return
    print(f"\nTuples read on `deliveries`, {run.workers} worker(s), per delivery sent in each window:")
    head = f"{'sent':>10} {'window':>8} {'s':>6} {'claim index':>12} {'index pages':>12} {'whole table':>12}"
    head += f" {'dead tuples':>12} {'vacuums':>8}"
    print(head)
    print("-" * len(head))
    for a, b in zip(run.points, run.points[1:], strict=False):
        sent, seconds, claim, pages, table = per_delivery(a, b)
        print(
            f"{b.sent:>10,} {sent:>8,} {seconds:>6.1f} {claim:>12.1f} {pages:>12.2f} {table:>12.1f}"
            f" {b.dead:>12,} {b.autovacuums:>8}"
        )
    sent, seconds, claim, pages, table = per_delivery(run.points[0], run.points[-1])
    print(f"{'whole run':>10} {sent:>8,} {seconds:>6.1f} {claim:>12.1f} {pages:>12.2f} {table:>12.1f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated numbers of worker processes")
    parser.add_argument("--concurrency", type=int, default=64, help="HERALD_WORKER_CONCURRENCY and the baseline's")
    parser.add_argument("--samples", type=int, default=4, help="points at which the table's statistics are read")
    parser.add_argument("--no-baseline", action="store_true", help="Herald only (long runs of the claim)")
    parser.add_argument("--time-limit", type=float, default=0.0, help="seconds per run (default: N/100, >= 600)")
    args = parser.parse_args()
    args.time_limit = args.time_limit or max(600.0, args.count / 100)
    counts = [int(w) for w in args.workers.split(",") if w]

    load_before = load()
    rows: list[tuple[HeraldRun, dict[str, Any] | None]] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-logs-") as log_dir, sink_process() as sink:
        for workers in counts:
            h = await run_herald(args, workers, sink, log_dir)
            b = None
            if not args.no_baseline:
                sink_cpu = cpu_seconds(sink.proc.pid)
                b = run_baseline(args, workers, h.body_bytes, sink)
                b["sink_cpu"] = cpu_seconds(sink.proc.pid) - sink_cpu
            rows.append((h, b))

    print()
    print(
        f"Webhook sends, `herald worker` vs raw httpx — postgres, {args.count:,} deliveries, concurrency "
        f"{args.concurrency} per process, {os.cpu_count()} CPUs, load avg {load_before}→{load()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    one_h = next((h.rate for h, _ in rows if h.workers == 1), None)
    one_b = next((b["rate"] for h, b in rows if h.workers == 1 and b), None)
    head = f"{'processes':>9} {'Herald/s':>9} {'baseline/s':>11} {'ratio':>6} {'Herald vs 1':>12} {'baseline vs 1':>14}"
    head += f" {'stuck':>6}"
    print(head)
    print("-" * len(head))
    for h, b in rows:
        ratio = f"{h.rate / b['rate']:.2f}" if b and b["rate"] else "-"
        vs_h = f"{h.rate / one_h:.2f}" if one_h else "-"
        vs_b = f"{b['rate'] / one_b:.2f}" if b and one_b else "-"
        base = f"{b['rate']:,.0f}" if b else "-"
        print(f"{h.workers:>9} {h.rate:>9,.0f} {base:>11} {ratio:>6} {vs_h:>12} {vs_b:>14} {h.stuck:>6}")
    print("targets: ratio >= 0.8 with 1 worker; Herald with 2 workers >= 1.6 x 1 worker")

    print("\nCPU ms per delivery over the timed part (the machine has", os.cpu_count(), "cores):")
    head = f"{'processes':>9} {'workers':>8} {'postgres':>9} {'sink':>6} {'total':>6}"
    head += f" | {'clients':>8} {'sink':>6} {'total':>6}"
    print(head)
    print("-" * len(head))
    for h, b in rows:
        per = {k: 1000 * v / args.count for k, v in h.cpu.items()}
        line = f"{h.workers:>9} {per.get('workers', 0):>8.2f} {per.get('postgres', 0):>9.2f} {per.get('sink', 0):>6.2f}"
        line += f" {sum(per.values()):>6.2f} |"
        if b:
            clients, sink_ms = 1000 * b["cpu"] / args.count, 1000 * b["sink_cpu"] / args.count
            line += f" {clients:>8.2f} {sink_ms:>6.2f} {clients + sink_ms:>6.2f}"
        print(line)
    for h, _ in rows:
        print_points(h)


if __name__ == "__main__":
    asyncio.run(main())
