#!/usr/bin/env python
"""The retention purge under load: trigger latency while 1,000,000 old rows are purged.

    flock /tmp/herald-bench.lock python bench/retention.py --db postgres [--pg-url …]
    flock /tmp/herald-bench.lock python bench/retention.py --db sqlite --rows 200000

Setup (not measured): a fresh, migrated database filled, by bulk insert (COPY on PostgreSQL,
executemany on SQLite), with ``--rows`` purgeable rows dated 100 days back, a fifth each of
notifications, their inbox items, their deliveries (ended: sent), those deliveries' attempts and
idempotency records; then VACUUM ANALYZE and a checkpoint. An in-app type ``bench.retention`` and a ``send`` key.

Measured: a real ``herald api`` (child process) takes ``POST /v1/notifications`` (one in-app
recipient, no Idempotency-Key) from this process at a steady ``--rate`` (open loop: a request is
sent every 1/rate seconds whatever the previous ones do). Three phases in one run:

1. **before**: triggers alone for ``--seconds``;
2. **purge**: a real ``herald worker`` (child process; retention ages of 30 days, 30 days and 24 h,
   batches of ``--batch`` rows) runs the retention job, made due at once, until its
   ``herald_retention_purged_rows_total`` (scraped from the worker's /metrics) reaches the rows put
   in; triggers go on at the same rate all along;
3. **after**: triggers alone again for ``--seconds``.

Printed: each phase's trigger latency (client side: p50, p99, max, errors), the purge's duration
and rows/second (from the job being due to the last row; the worker's own start is not counted).
Checked: every old row is gone, every triggered notification has its inbox item.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from _support import asyncpg_dsn, free_port, fresh_postgres, stop_server, wait_until_serving
from sqlalchemy import func, insert, select, text, update

from herald.core.ids import new_ids
from herald.engine import retention
from herald.store import catalog
from herald.store import retention as retention_store
from herald.store.apikeys import create_api_key
from herald.store.db import create_engine
from herald.store.migrate import upgrade
from herald.store.tables import deliveries, delivery_attempts, idempotency_keys, inbox_items, notifications

SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench_retention"
TYPE_KEY = "bench.retention"
TEMPLATE = {"title": "订单 ${n} 已发货", "summary": "Order ${n} shipped", "body": "Order ${n} left the warehouse."}
TABLES = (notifications, inbox_items, deliveries, delivery_attempts, idempotency_keys)
CHUNK = 20_000


# -- setup (not measured) ------------------------------------------------------------------------


def old_rows(start: int, n: int, when: datetime) -> dict[str, list[dict[str, Any]]]:
    """``n`` old notifications with one inbox item, one ended delivery, its attempt and an
    idempotency record each: five purgeable rows per notification."""
    nids, iids, dids = new_ids("ntf", n), new_ids("itm", n), new_ids("dlv", n)
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TABLES}
    for i, (nid, iid, did) in enumerate(zip(nids, iids, dids, strict=True)):
        user = f"old{(start + i) % 10_000:05d}"
        data = {"n": str(start + i)}
        rows["notifications"].append({
            "id": nid, "type_key": TYPE_KEY, "category": "reminder", "priority": "normal", "status": "processed",
            "channels": ["inapp", "webhook"], "data": data, "actor": None, "target": None,
            "rendered": {"inapp": {"en": TEMPLATE}}, "audience": None, "accounts": None, "recipients": 1,
            "send_at": None, "expires_at": None, "created_at": when, "updated_at": when,
        })  # fmt: skip
        rows["inbox_items"].append({
            "id": iid, "user_id": user, "notification_id": nid, "type_key": TYPE_KEY, "category": "reminder",
            "title": "订单已发货", "summary": "Order shipped", "body": "Order left the warehouse.", "data": data,
            "actor": None, "target": None, "action_url": None, "actions": [], "read_at": None, "seen_at": None,
            "archived_at": None, "created_at": when, "expires_at": None,
        })  # fmt: skip
        rows["deliveries"].append({
            "id": did, "notification_id": nid, "user_id": user, "channel": "webhook", "account": "hook",
            "status": "sent", "reason": None, "reason_detail": None, "priority": 1, "attempts": 1, "last_error": None,
            "provider_message_id": None, "next_attempt_at": None, "lease_until": None, "lease_owner": None,
            "expires_at": None, "created_at": when, "updated_at": when,
        })  # fmt: skip
        rows["delivery_attempts"].append({
            "delivery_id": did, "attempt": 1, "worker": "bench", "started_at": when, "finished_at": when,
            "outcome": "sent", "account": "hook", "code": None, "error": None,
        })  # fmt: skip
        rows["idempotency_keys"].append({
            "scope": "key_bench", "key": f"k{start + i}", "request_hash": "0" * 64, "state": "done",
            "response_status": 202, "response_body": b"{}", "created_at": when, "expires_at": when + timedelta(days=1),
        })  # fmt: skip
    return rows


def _copy_value(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


async def fill(url: str, n_notifications: int) -> None:
    when = datetime.now(UTC) - timedelta(days=100)
    pg = url.startswith("postgresql")
    engine = create_engine(url)
    try:
        conn_pg = await asyncpg.connect(asyncpg_dsn(url)) if pg else None
        for start in range(0, n_notifications, CHUNK):
            rows = old_rows(start, min(CHUNK, n_notifications - start), when)
            if conn_pg is not None:
                for table in TABLES:
                    # the columns given; the database fills the rest (columns other parts add: ``count`` …)
                    columns = list(rows[table.name][0])
                    records = [tuple(_copy_value(r[c]) for c in columns) for r in rows[table.name]]
                    await conn_pg.copy_records_to_table(table.name, records=records, columns=columns)
            else:
                async with engine.begin() as conn:
                    for table in TABLES:
                        await conn.execute(insert(table), rows[table.name])
        # statistics, then the fill's dirty pages written out: no phase pays for the fill
        if conn_pg is not None:
            await conn_pg.execute("VACUUM ANALYZE")
            await conn_pg.execute("CHECKPOINT")
            await conn_pg.close()
        else:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
    finally:
        await engine.dispose()
    if not pg:
        with sqlite3.connect(url.partition(":///")[2]) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def build_database(url: str, n_notifications: int) -> str:
    """Migrate, add the type and its template, fill the old rows; return a ``send`` API key."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await catalog.put_type(
                conn,
                TYPE_KEY,
                {
                    "name": "Bench",
                    "category": "reminder",
                    "priority": "normal",
                    "channels": ["inapp"],
                    "critical": False,
                },
            )
            await catalog.put_template(conn, TYPE_KEY, "inapp", "en", TEMPLATE)
            _, key = await create_api_key(conn, "bench", ["send"])
    finally:
        await engine.dispose()
    await fill(url, n_notifications)
    return key


async def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one()) for t in TABLES}
    finally:
        await engine.dispose()


async def make_purge_due(url: str) -> None:
    """The retention job, due now (a new worker's housekeeping would make it due in a minute)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            await retention_store.schedule_job(conn, retention.JOB_ID, retention.KIND, run_at=now, now=now)
            await conn.execute(
                update(retention_store.jobs).where(retention_store.jobs.c.id == retention.JOB_ID).values(run_at=now)
            )
            if url.startswith("postgresql"):
                await conn.execute(text("NOTIFY herald_work"))
    finally:
        await engine.dispose()


# -- the children ---------------------------------------------------------------------------------


def child_env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HERALD_DATABASE_URL": url,
        "HERALD_SECRET_KEY": SECRET,
        "HERALD_AUTO_MIGRATE": "false",
        "HERALD_LOG_LEVEL": "warning",
        **extra,
    }


def herald_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from herald.cli import main; main()", *args]


def start_api(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(herald_command("api", "--port", str(port)), env=child_env(url), stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, base, 60)
    return proc, base


def start_worker(url: str, batch: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = child_env(
        url,
        HERALD_WORKER_METRICS_PORT=str(port),
        HERALD_RETENTION_BATCH_SIZE=str(batch),
        # the old rows are 100 days old: every kind is past its age
        HERALD_RETENTION_INBOX_DAYS="30",
        HERALD_RETENTION_DELIVERIES_DAYS="30",
        HERALD_RETENTION_IDEMPOTENCY_HOURS="24",
        HERALD_LOG_LEVEL="info",
    )
    proc = subprocess.Popen(herald_command("worker"), env=env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, base, 60)
    return proc, base


async def purged_so_far(client: httpx.AsyncClient, base: str) -> int:
    text_ = (await client.get(f"{base}/metrics")).text
    total = 0.0
    for line in text_.splitlines():
        if line.startswith("herald_retention_purged_rows_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


# -- the load -------------------------------------------------------------------------------------


class Load:
    """Open-loop triggers at a steady rate; each is kept with the moment it was sent."""

    def __init__(self, base: str, key: str, rate: float) -> None:
        self.base, self.key, self.rate = base, key, rate
        self.sent: list[tuple[float, float | None]] = []
        """(monotonic time sent, latency in seconds or None for an error)."""
        self.ids: list[str] = []
        self.failures: dict[str, int] = {}
        """What the failed triggers answered (status, or the exception's name), how many times."""
        self._stop = asyncio.Event()

    async def run(self) -> None:
        # idle connections are dropped before uvicorn's keep-alive (5 s) closes them under a request
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=2.0)
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(base_url=self.base, limits=limits, headers=headers, timeout=60) as client:
            tasks: set[asyncio.Task[None]] = set()
            interval = 1 / self.rate
            next_at = time.monotonic()
            n = 0
            while not self._stop.is_set():
                task = asyncio.create_task(self._one(client, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, n: int) -> None:
        body = {"type": TYPE_KEY, "to": [f"user{n % 1000:04d}"], "data": {"n": str(n)}}
        started = time.monotonic()
        latency: float | None = None
        failure = ""
        try:
            r = await client.post("/v1/notifications", json=body)
            if r.status_code == 202:
                latency = time.monotonic() - started
                self.ids.append(r.json()["id"])
            else:
                failure = f"{r.status_code} {r.text[:120]}"
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        if latency is None:
            self.failures[failure] = self.failures.get(failure, 0) + 1
        self.sent.append((started, latency))

    def stop(self) -> None:
        self._stop.set()

    def within(self, start: float, end: float) -> tuple[list[float], int]:
        """Latencies of the triggers sent in [start, end), and how many of those failed."""
        window = [latency for at, latency in self.sent if start <= at < end]
        return [x for x in window if x is not None], sum(1 for x in window if x is None)


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def report_phase(name: str, load: Load, start: float, end: float) -> None:
    values, errors = load.within(start, end)
    seconds = end - start
    print(
        f"  {name:<7} {len(values):>6} triggers in {seconds:6.1f} s ({len(values) / seconds:6.1f}/s)"
        f"  p50 {quantile(values, 0.5) * 1000:7.1f} ms  p99 {quantile(values, 0.99) * 1000:7.1f} ms"
        f"  max {max(values, default=float('nan')) * 1000:7.1f} ms  errors {errors}",
        flush=True,
    )


async def measure(url: str, key: str, n: int, args: argparse.Namespace) -> None:
    """``n`` old notifications: 5 n rows, of which the worker's metric counts 4 n (the attempts go by
    ON DELETE CASCADE with their deliveries, uncounted)."""
    expected = 4 * n
    api, base = start_api(url)
    worker: subprocess.Popen[bytes] | None = None
    load = Load(base, key, args.rate)
    runner = asyncio.create_task(load.run())
    phases: dict[str, tuple[float, float]] = {}
    purged = 0
    try:
        await asyncio.sleep(3)  # warm up: connections, caches
        started = time.monotonic()
        await asyncio.sleep(args.seconds)
        phases["before"] = (started, time.monotonic())

        worker, metrics_base = await asyncio.to_thread(start_worker, url, args.batch)
        await asyncio.sleep(2)  # the worker's own start is not the purge
        async with httpx.AsyncClient(timeout=10) as client:
            await make_purge_due(url)
            started = time.monotonic()
            while purged < expected:
                await asyncio.sleep(0.2)
                purged = await purged_so_far(client, metrics_base)
                if time.monotonic() - started > args.max_purge_seconds:
                    print(f"  purge did not finish in {args.max_purge_seconds} s ({purged} rows)", flush=True)
                    break
            phases["purge"] = (started, time.monotonic())
        started = time.monotonic()
        await asyncio.sleep(args.seconds)
        phases["after"] = (started, time.monotonic())
    finally:
        load.stop()
        await runner
        if worker is not None:
            stop_server(worker)
        stop_server(api)
    for name, (start, end) in phases.items():
        report_phase(name, load, start, end)
    seconds = phases["purge"][1] - phases["purge"][0]
    rows = purged + purged // 4  # with the cascaded attempts, one per delivery
    print(
        f"  purge   {rows:,} rows in {seconds:.1f} s: {rows / seconds:,.0f} rows/s"
        f" (batches of {args.batch}; the first 0-1 s is the worker's poll picking the job up)",
        flush=True,
    )
    for failure, times in load.failures.items():
        print(f"  failed {times} x: {failure}", flush=True)
    counts = await row_counts(url)
    print(f"  left: {counts}", flush=True)
    assert counts["deliveries"] == counts["delivery_attempts"] == counts["idempotency_keys"] == 0, counts
    assert counts["inbox_items"] == counts["notifications"] == len(load.ids), (counts, len(load.ids))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["postgres", "sqlite"], required=True)
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--rows", type=int, default=1_000_000, help="purgeable rows put in (a fifth per table)")
    parser.add_argument("--rate", type=float, default=100, help="triggers per second, all phases")
    parser.add_argument("--seconds", type=float, default=20, help="length of the before and after phases")
    parser.add_argument("--batch", type=int, default=1000, help="HERALD_RETENTION_BATCH_SIZE of the worker")
    parser.add_argument("--max-purge-seconds", type=float, default=900)
    args = parser.parse_args()

    tmp = None
    if args.db == "postgres":
        url = args.pg_url
        await fresh_postgres(url)
    else:
        tmp = tempfile.mkdtemp(prefix="herald-bench-retention-")
        url = f"sqlite+aiosqlite:///{tmp}/herald.db"
    try:
        n = args.rows // len(TABLES)
        clock = time.monotonic()
        key = await build_database(url, n)
        print(
            f"{args.db}: {n * len(TABLES):,} purgeable rows put in ({time.monotonic() - clock:.0f} s, not measured);"
            f" triggers at {args.rate:g}/s",
            flush=True,
        )
        await measure(url, key, n, args)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
