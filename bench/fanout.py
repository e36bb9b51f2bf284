#!/usr/bin/env python
"""Fan-out throughput: one ``audience: {"all": true}`` notification to N users, against a raw bulk insert.

    python bench/fanout.py --db sqlite   --users 100000
    python bench/fanout.py --db postgres --users 100000
    python bench/fanout.py --db postgres --users 1000000 --chunk-sizes 5000,20000

Herald's figure: the time from ``POST /v1/notifications`` (real HTTP API over an in-process ASGI
transport) until the engine Worker has committed the last chunk of the fan-out job, and the number
of ``inbox_items`` rows written in that time.

Baselines, measured in the same run against the same database: the same number of equivalent
inbox rows (same columns, same values as a row Herald wrote, fresh ids) inserted into a copy of
``inbox_items`` with the same primary key and the same three indexes:

* ``executemany``: SQLAlchemy Core ``conn.execute(insert(table), rows)``, one transaction per chunk
  of the same chunk size, row dicts built inside the timed loop (Herald builds its rows too);
* ``COPY`` (PostgreSQL only): asyncpg ``copy_records_to_table``, one COPY per chunk.

Before every timed phase the tables are emptied and the database checkpointed, so no phase pays
for the previous one's dirty pages. Nothing here is a test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from _support import asyncpg_dsn, fresh_postgres
from sqlalchemy import Column, Index, MetaData, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from herald.app import create_app
from herald.config import Settings
from herald.core.ids import new_ids
from herald.engine.service import Herald
from herald.engine.worker import Worker
from herald.store.apikeys import create_api_key
from herald.store.db import create_engine
from herald.store.migrate import upgrade
from herald.store.tables import inbox_items, jobs, notifications, users

SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench"
TYPE_KEY = "bench.blast"
TEMPLATE = {
    "title": "系统通知 #${n}",
    "summary": "Blast number ${n} went out to everyone",
    "body": "This is the body of blast number ${n}. 您好，这是第 ${n} 次群发通知的详情。",
}
PHASE_TIMEOUT_S = 900.0


def user_id(i: int) -> str:
    return f"user{i:08d}"


# -- database setup (not measured) ---------------------------------------------------------------


def make_raw_table() -> Table:
    """A copy of ``inbox_items``: same columns, types, primary key and indexes (renamed)."""
    md = MetaData()
    raw = Table(
        "inbox_items_raw",
        md,
        *[Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in inbox_items.columns],
    )
    where = text("read_at IS NULL AND archived_at IS NULL")
    Index("ix_inbox_items_raw_user_feed", raw.c.user_id, raw.c.created_at, raw.c.id)
    Index(
        "ix_inbox_items_raw_user_unread",
        raw.c.user_id,
        raw.c.category,
        raw.c.expires_at,
        sqlite_where=where,
        postgresql_where=where,
    )
    Index("ix_inbox_items_raw_notification_id", raw.c.notification_id)
    return raw


async def insert_users(engine: AsyncEngine, url: str, n: int) -> None:
    now = datetime.now(UTC)
    if engine.dialect.name == "postgresql":
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            cols = ["id", "locale", "channels", "tags", "data", "created_at", "updated_at"]
            step = 100_000
            for start in range(0, n, step):
                records = [
                    (user_id(i), "en" if i % 5 == 0 else None, "{}", "[]", "{}", now, now)
                    for i in range(start, min(n, start + step))
                ]
                await conn.copy_records_to_table("users", records=records, columns=cols)
            await conn.execute("ANALYZE users")
        finally:
            await conn.close()
        return
    step = 50_000
    async with engine.begin() as conn:
        for start in range(0, n, step):
            rows = [
                {
                    "id": user_id(i),
                    "locale": "en" if i % 5 == 0 else None,
                    "channels": {},
                    "tags": [],
                    "data": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(n, start + step))
            ]
            await conn.execute(insert(users), rows)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


async def empty_and_checkpoint(engine: AsyncEngine, *tables: str) -> None:
    """Empty the given tables and flush everything to disk, so each timed phase starts level."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)}"))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("CHECKPOINT"))
        return
    async with engine.begin() as conn:
        for t in tables:
            await conn.execute(text(f"DELETE FROM {t}"))
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


async def count_rows(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


# -- Herald (measured) ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_app(url: str, chunk_size: int) -> AsyncIterator[tuple[Herald, httpx.AsyncClient, dict[str, str]]]:
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        auto_migrate=False,
        allow_private_urls=True,
        fanout_chunk_size=chunk_size,
        log_level="warning",
    )
    app = create_app(settings, run_worker=False)
    herald: Herald = app.state.herald
    async with app.router.lifespan_context(app):
        async with herald.db.write() as conn:
            _, key = await create_api_key(conn, "bench", ["admin"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.bench", timeout=PHASE_TIMEOUT_S) as c:
            yield herald, c, {"Authorization": f"Bearer {key}"}


async def create_type(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.put(f"/v1/notification-types/{TYPE_KEY}", json={"channels": ["inapp"]}, headers=auth)
    assert r.status_code in (200, 201), r.text
    r = await client.put(f"/v1/notification-types/{TYPE_KEY}/templates/inapp", json=TEMPLATE, headers=auth)
    assert r.status_code == 200, r.text


async def run_herald(url: str, chunk_size: int, n: int, blast_no: int, profile: bool) -> dict[str, Any]:
    async with running_app(url, chunk_size) as (herald, client, auth):
        prof = cProfile.Profile() if profile else None
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        r = await client.post(
            "/v1/notifications",
            json={"type": TYPE_KEY, "audience": {"all": True}, "data": {"n": blast_no}},
            headers=auth,
        )
        t_accepted = time.perf_counter()
        assert r.status_code == 202, r.text
        notification_id = r.json()["id"]
        worker = Worker(herald)
        t_done = t_accepted
        rounds = 0
        while await worker.run_once():
            t_done = time.perf_counter()
            rounds += 1
            assert rounds < 1000, "worker never ran out of work"
        if prof:
            prof.disable()
        async with herald.db.read() as conn:
            status = (
                await conn.execute(
                    select(notifications.c.status, notifications.c.recipients).where(
                        notifications.c.id == notification_id
                    )
                )
            ).one()
            job_status = [s for (s,) in await conn.execute(select(jobs.c.status))]
            written = int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(inbox_items)
                        .where(inbox_items.c.notification_id == notification_id)
                    )
                ).scalar_one()
            )
            sample = dict((await conn.execute(select(inbox_items).limit(1))).mappings().one())
    assert status.status == "processed" and status.recipients == n, (status, n)
    assert job_status and all(s == "done" for s in job_status), job_status
    assert written == n, (written, n)
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(35)
        out.write("\n--- by own time ---\n")
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue(), file=sys.stderr)
    return {
        "seconds": t_done - t0,
        "accept_ms": (t_accepted - t0) * 1000,
        "rows": written,
        "sample": sample,
        "notification_id": notification_id,
    }


# -- baselines (measured) ------------------------------------------------------------------------


def chunks(n: int, size: int) -> list[range]:
    return [range(s, min(n, s + size)) for s in range(0, n, size)]


async def baseline_executemany(
    engine: AsyncEngine, raw: Table, n: int, chunk_size: int, sample: dict[str, Any]
) -> float:
    template = {k: v for k, v in sample.items() if k not in ("id", "user_id")}
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for part in chunks(n, chunk_size):
        ids = new_ids("itm", len(part))
        rows = [{**template, "id": ids[j], "user_id": user_id(i), "created_at": now} for j, i in enumerate(part)]
        async with engine.begin() as conn:
            await conn.execute(insert(raw), rows)
    return time.perf_counter() - t0


async def baseline_copy(url: str, n: int, chunk_size: int) -> float:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        # The sample as PostgreSQL stores it (jsonb as text, JSON null as 'null'), so the copy is exact.
        sample = dict(await conn.fetchrow("SELECT * FROM inbox_items LIMIT 1"))
        columns = list(sample)
        id_at, user_at, created_at = columns.index("id"), columns.index("user_id"), columns.index("created_at")
        template = list(sample.values())
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        for part in chunks(n, chunk_size):
            ids = new_ids("itm", len(part))
            records = []
            for j, i in enumerate(part):
                rec = template.copy()
                rec[id_at] = ids[j]
                rec[user_at] = user_id(i)
                rec[created_at] = now
                records.append(rec)
            async with conn.transaction():
                await conn.copy_records_to_table("inbox_items_raw", records=records, columns=columns)
        return time.perf_counter() - t0
    finally:
        await conn.close()


# -- main ----------------------------------------------------------------------------------------


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--chunk-sizes", default="1000,5000,20000", help="comma-separated fanout_chunk_size values")
    parser.add_argument("--repeat", type=int, default=1, help="runs per chunk size; the table shows the best of each")
    parser.add_argument("--profile", action="store_true", help="cProfile the Herald phase (stats to stderr)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.chunk_sizes.split(",") if s]
    n = args.users

    tmpdir = None
    if args.db == "sqlite":
        tmpdir = tempfile.mkdtemp(prefix="herald-bench-")
        url = f"sqlite+aiosqlite:///{os.path.join(tmpdir, 'herald.db')}"
    else:
        url = args.pg_url
        await fresh_postgres(url)

    engine = create_engine(url)
    raw = make_raw_table()
    is_pg = args.db == "postgres"
    results = []
    load_before = os.getloadavg()[0]
    try:
        t = time.perf_counter()
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(raw.metadata.create_all)
        await insert_users(engine, url, n)
        async with running_app(url, sizes[0]) as (_, client, auth):
            await create_type(client, auth)
        print(f"setup: {n:,} users on {args.db} in {time.perf_counter() - t:.1f} s (not measured)", flush=True)

        blast_no = 0
        for size in sizes:
            best: tuple[Any, ...] | None = None
            for run in range(1, args.repeat + 1):
                blast_no += 1
                tag = f"chunk {size} run {run}/{args.repeat}"
                await empty_and_checkpoint(engine, "inbox_items", "jobs", "notifications")
                h = await asyncio.wait_for(run_herald(url, size, n, blast_no, args.profile), PHASE_TIMEOUT_S)
                print(
                    f"{tag}: Herald {h['rows']:,} rows in {h['seconds']:.2f} s "
                    f"(POST answered in {h['accept_ms']:.1f} ms)",
                    flush=True,
                )

                await empty_and_checkpoint(engine, "inbox_items_raw")
                em = await asyncio.wait_for(baseline_executemany(engine, raw, n, size, h["sample"]), PHASE_TIMEOUT_S)
                assert await count_rows(engine, "inbox_items_raw") == n
                print(f"{tag}: executemany baseline in {em:.2f} s", flush=True)
                cp = None
                if is_pg:
                    await empty_and_checkpoint(engine, "inbox_items_raw")
                    cp = await asyncio.wait_for(baseline_copy(url, n, size), PHASE_TIMEOUT_S)
                    assert await count_rows(engine, "inbox_items_raw") == n
                    print(f"{tag}: COPY baseline in {cp:.2f} s", flush=True)
                if best is None:
                    best = (size, h, em, cp)
                else:
                    _, bh, bem, bcp = best
                    best = (
                        size,
                        h if h["seconds"] < bh["seconds"] else bh,
                        min(em, bem),
                        min(cp, bcp) if cp is not None and bcp is not None else None,
                    )
            assert best is not None
            results.append(best)
    finally:
        await engine.dispose()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)

    print()
    print(
        f"Fan-out of one audience:all notification to {n:,} users — {args.db}, {os.cpu_count()} CPUs, "
        f"load avg {load_before:.1f}→{os.getloadavg()[0]:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        + (f", best of {args.repeat} runs" if args.repeat > 1 else "")
    )
    head = f"{'chunk':>6} {'rows':>10} {'Herald s':>9} {'Herald rows/s':>14} {'executemany rows/s':>19} {'ratio':>6}"
    if is_pg:
        head += f" {'COPY rows/s':>12} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for size, h, em, cp in results:
        herald_rate = h["rows"] / h["seconds"]
        line = (
            f"{size:>6} {h['rows']:>10,} {h['seconds']:>9.2f} {fmt_int(herald_rate):>14} "
            f"{fmt_int(n / em):>19} {herald_rate / (n / em):>6.2f}"
        )
        if cp is not None:
            line += f" {fmt_int(n / cp):>12} {herald_rate / (n / cp):>6.2f}"
        print(line)
    print("ratio = Herald rows/s ÷ baseline rows/s (target >= 0.5)")
    if is_pg and n >= 1_000_000:
        best = min(h["seconds"] for _, h, _, _ in results)
        verdict = "met" if best <= 20 else "NOT met"
        print(f"1M-user target (<= 20 s): best {best:.1f} s — {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
