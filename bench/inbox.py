#!/usr/bin/env python
"""Inbox read latency over real HTTP: list (first page), a deep page by cursor, unread counts.

    python bench/inbox.py --db sqlite
    python bench/inbox.py --db postgres [--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench]

Setup (not measured): a fresh database with 1,000,000 ``inbox_items`` rows — one "hot" user with
10,000 items and 990,000 items spread over 9,900 other users (100 each); a share read, archived,
expired; two live announcements for everyone (the feed merges them) — bulk-inserted directly,
then ANALYZE (PostgreSQL: VACUUM ANALYZE, as autovacuum would leave a settled table).

Measured: the real app (``create_app(settings, run_worker=False)``) served by uvicorn in a child
process on 127.0.0.1, one process; this process sends sequential keep-alive requests with httpx as
the hot user (a user token minted with the settings' secret). After a warm-up, requests go
round-robin over the endpoints so machine noise hits all of them alike, and each endpoint's
latency (client-side, request sent to body read) gives p50 / p99. The baseline is GET /healthz on
the same server and connection: the cost of HTTP + uvicorn + FastAPI + the client alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
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
from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url

from herald.core.ids import _encode, new_id
from herald.engine.tokens import mint_user_token
from herald.store.db import create_engine
from herald.store.migrate import upgrade
from herald.store.tables import announcements, users

SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench"
HOT = "hot-user"
HOT_ITEMS = 10_000
OTHER_USERS = 9_900
ITEMS_PER_OTHER = 100
READ_SHARE, ARCHIVED_SHARE, EXPIRING_SHARE, DIRECT_SHARE = 0.6, 0.05, 0.1, 0.1
SERVER_START_TIMEOUT_S = 60.0
LIVE_ANNOUNCEMENTS = 2
MAX_ANNOUNCEMENTS = 50
RUN_TIMEOUT_S = 600.0
COLUMNS = [
    "id", "user_id", "notification_id", "type_key", "category", "title", "summary", "body", "data", "actor",
    "target", "action_url", "actions", "read_at", "seen_at", "archived_at", "created_at", "expires_at",
]  # fmt: skip


# -- setup (not measured) ------------------------------------------------------------------------


def generate_items(now: datetime, rng: random.Random) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """All 1M rows as tuples in COLUMNS order (datetimes aware, JSON as text); and the hot user's expected counts."""
    rows: list[tuple[Any, ...]] = []
    expected = {"reminder": 0, "direct": 0}
    owners = [(HOT, HOT_ITEMS)] + [(f"user{i:06d}", ITEMS_PER_OTHER) for i in range(OTHER_USERS)]
    span_ms = 180 * 24 * 3600 * 1000
    now_ms = int(now.timestamp() * 1000)
    for uid, count in owners:
        for _ in range(count):
            ms = now_ms - rng.randrange(span_ms)
            created = datetime.fromtimestamp(ms / 1000, UTC)
            n = rng.randrange(1_000_000)
            category = "direct" if rng.random() < DIRECT_SHARE else "reminder"
            read = rng.random() < READ_SHARE
            archived = rng.random() < ARCHIVED_SHARE
            expires = None
            if rng.random() < EXPIRING_SHARE:  # half of these already expired
                expires = now + timedelta(days=rng.choice([-1, 1]) * rng.randrange(1, 60))
            if uid == HOT and not read and not archived and (expires is None or expires > now):
                expected[category] += 1
            rows.append((
                f"itm_{_encode(ms, 10)}{_encode(rng.getrandbits(80), 16)}",
                uid,
                f"ntf_{_encode(ms, 10)}{_encode(rng.getrandbits(80), 16)}",
                "order.shipped" if category == "reminder" else "direct.message",
                category,
                f"订单 #{n} 已发货",
                f"Your order #{n} is on its way",
                f"Order #{n} left the warehouse and should arrive within 3 days. 您的订单已发货。",
                json.dumps({"order": n, "amount": "99.00"}),
                "null",
                "null",
                f"/orders/{n}",
                "[]",
                created + timedelta(minutes=5) if read else None,
                created + timedelta(minutes=5) if read else None,
                created + timedelta(minutes=9) if archived else None,
                created,
                expires,
            ))  # fmt: skip
    return rows, expected


def sqlite_value(v: Any) -> Any:
    # What SQLAlchemy's SQLite DateTime stores: naive UTC "YYYY-MM-DD HH:MM:SS.ffffff".
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return v


async def build_database(url: str, is_pg: bool) -> dict[str, int]:
    now = datetime.now(UTC)
    rng = random.Random(20240601)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        user_rows = [
            {"id": uid, "channels": {}, "tags": [], "data": {}, "created_at": now, "updated_at": now}
            for uid in [HOT] + [f"user{i:06d}" for i in range(OTHER_USERS)]
        ]
        ann_rows = [
            {"id": new_id("ann"), "kind": "notice", "content_type": "text", "title": f"Maintenance window {i}",
             "summary": "Planned maintenance", "body": "We will be down briefly.", "data": {},
             "audience": {"all": True}, "feed_at": now - timedelta(days=i), "created_at": now, "updated_at": now}
            for i in range(MAX_ANNOUNCEMENTS)
        ]  # fmt: skip
        for i, row in enumerate(ann_rows):  # the first LIVE_ANNOUNCEMENTS are live; the rest ended
            row["ends_at"] = None if i < LIVE_ANNOUNCEMENTS else now - timedelta(days=1)
        async with engine.begin() as conn:
            await conn.execute(insert(users), user_rows)
            await conn.execute(insert(announcements), ann_rows)
        rows, expected = generate_items(now, rng)
        if is_pg:
            conn = await asyncpg.connect(asyncpg_dsn(url))
            try:
                for start in range(0, len(rows), 100_000):
                    await conn.copy_records_to_table(
                        "inbox_items", records=rows[start : start + 100_000], columns=COLUMNS
                    )
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()
        else:
            sql = f"INSERT INTO inbox_items ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
            async with engine.begin() as conn:
                for start in range(0, len(rows), 100_000):
                    part = [tuple(sqlite_value(v) for v in r) for r in rows[start : start + 100_000]]
                    await conn.exec_driver_sql(sql, part)
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        expected["announcement"] = LIVE_ANNOUNCEMENTS
        return expected
    finally:
        await engine.dispose()


# -- the server (child process) ------------------------------------------------------------------


async def migrate_only(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def serve(url: str, port: int) -> None:
    import uvicorn

    from herald.app import create_app
    from herald.config import Settings

    settings = Settings(database_url=url, secret_key=SECRET, auto_migrate=False, log_level="warning")
    app = create_app(settings, run_worker=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the floor (child process): the same queries on the raw driver behind a bare ASGI app ----------

FLOOR_COLUMNS = [c for c in COLUMNS if c != "user_id"]
FLOOR_JSON = ("data", "actor", "target", "actions")
FLOOR_LIST_SQL = (
    f"SELECT {', '.join(FLOOR_COLUMNS)} FROM inbox_items WHERE user_id = {{p1}} AND (expires_at IS NULL OR "
    "expires_at > {p2}) AND archived_at IS NULL ORDER BY created_at DESC, id DESC LIMIT {p3}"
)
FLOOR_COUNTS_SQL = (  # unread and unseen by category, as Herald's counts answer them
    "SELECT category, count(*), sum(CASE WHEN seen_at IS NULL THEN 1 ELSE 0 END) FROM inbox_items "
    "WHERE user_id = {p1} AND (expires_at IS NULL OR expires_at > {p2}) AND read_at IS NULL AND archived_at IS NULL "
    "GROUP BY category"
)


def serve_floor(url: str, port: int) -> None:
    """What a hand-written endpoint does: the inbox's two queries on asyncpg / aiosqlite, rows to
    dicts, JSON columns decoded, times as ISO strings, ``json.dumps``. No auth, no framework."""
    import uvicorn

    is_pg = url.startswith("postgresql")
    state: dict[str, Any] = {}

    def iso(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC).isoformat()
        return v.isoformat()

    def item(row: Any) -> dict[str, Any]:
        out = dict(zip(FLOOR_COLUMNS, tuple(row), strict=True))
        for k in FLOOR_JSON:
            out[k] = json.loads(out[k]) if isinstance(out[k], str) else out[k]
        for k in ("read_at", "seen_at", "archived_at", "created_at", "expires_at"):
            out[k] = iso(out[k])
        return out

    async def query(sql: str, *args: Any) -> list[Any]:
        if is_pg:
            async with state["pool"].acquire() as conn:
                return list(await conn.fetch(sql, *args))
        db = await state["conns"].get()
        try:
            async with db.execute(sql, args) as cur:
                return list(await cur.fetchall())
        finally:
            state["conns"].put_nowait(db)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if is_pg:
                        state["pool"] = await asyncpg.create_pool(asyncpg_dsn(url), min_size=4, max_size=20)
                    else:
                        import aiosqlite

                        state["conns"] = asyncio.Queue()
                        for _ in range(4):
                            state["conns"].put_nowait(await aiosqlite.connect(make_url(url).database))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if is_pg:
                        await state["pool"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        now = datetime.now(UTC)
        p = ("$1", "$2", "$3") if is_pg else ("?", "?", "?")
        when: Any = now if is_pg else sqlite_value(now)
        if scope["path"] == "/inbox":
            rows = await query(FLOOR_LIST_SQL.format(p1=p[0], p2=p[1], p3=p[2]), HOT, when, 21)
            body: Any = {"items": [item(r) for r in rows[:20]], "next_cursor": None}
        elif scope["path"] == "/counts":
            rows = await query(FLOOR_COUNTS_SQL.format(p1=p[0], p2=p[1]), HOT, when)
            by = {c: int(n) for c, n, _ in rows}
            body = {"total": sum(by.values()), "by_category": by, "unseen": sum(int(u) for _, _, u in rows)}
        else:
            body = {"status": "ok"}
        payload = json.dumps(body).encode()
        await send({
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(url: str, *, floor: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-floor" if floor else "--serve", url, "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, base, SERVER_START_TIMEOUT_S)
    return proc, base


# -- measuring -----------------------------------------------------------------------------------


def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[k]


def measure(base: str, token: str, expected: dict[str, int], requests: int, warmup: int, depth: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        # The deep cursor: walk the hot user's feed 100 at a time down to ``depth`` items.
        cursor, walked = None, 0
        while walked < depth:
            r = client.get("/v1/me/inbox", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
            r.raise_for_status()
            page = r.json()
            walked += len(page["items"])
            cursor = page["next_cursor"]
            assert cursor, f"feed ended after {walked} items"

        counts = client.get("/v1/me/inbox/counts").json()
        assert counts["by_category"]["reminder"] == expected["reminder"], (counts, expected)
        assert counts["by_category"]["direct"] == expected["direct"], (counts, expected)
        assert counts["by_category"]["announcement"] == expected["announcement"], (counts, expected)

        endpoints = {
            "GET /healthz (baseline)": ("/healthz", None),
            "GET /v1/me/inbox?limit=20": ("/v1/me/inbox", {"limit": 20}),
            f"GET /v1/me/inbox?limit=20&cursor=<{walked}>": ("/v1/me/inbox", {"limit": 20, "cursor": cursor}),
            "GET /v1/me/inbox/counts": ("/v1/me/inbox/counts", None),
        }
        samples: dict[str, list[float]] = {name: [] for name in endpoints}
        for i in range(warmup + requests):
            for name, (path, params) in endpoints.items():
                t0 = time.perf_counter()
                r = client.get(path, params=params)
                body = r.content
                elapsed = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{name}: {r.status_code} {body[:300]!r}")
                if i >= warmup:
                    samples[name].append(elapsed)
            if time.monotonic() > deadline:
                print(f"time limit reached after {i + 1 - warmup} measured rounds", file=sys.stderr)
                break
        items = client.get("/v1/me/inbox", params={"limit": 20}).json()["items"]
        assert len(items) == 20
        deep = client.get("/v1/me/inbox", params={"limit": 20, "cursor": cursor}).json()["items"]
        assert len(deep) == 20
    return {"samples": samples, "depth": walked, "counts": counts}


# -- throughput under concurrency (wrk) -----------------------------------------------------------


def wrk(url: str, token: str | None, concurrency: int, seconds: float) -> tuple[float, float, int]:
    """Requests/s, p99 ms and non-2xx responses from ``wrk`` at this many connections."""
    cmd = ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s", "--latency", url]
    if token:
        cmd[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = float(out.split("Requests/sec:")[1].split()[0])
    p99 = _wrk_ms(out.split(" 99%")[1].split()[0])
    errors = 0
    for key in ("Non-2xx or 3xx responses:", "Socket errors:"):
        if key in out:
            tail = out.split(key)[1].split("\n")[0]
            errors += sum(int(x) for x in tail.replace(",", " ").split() if x.isdigit())
    return rate, p99, errors


def _wrk_ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


async def set_live_announcements(url: str, n: int) -> None:
    """Make exactly ``n`` of the bench's announcements live (by their end time)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            ids = [r[0] for r in await conn.execute(select(announcements.c.id).order_by(announcements.c.id))]
            past = datetime.now(UTC) - timedelta(days=1)
            for i, ann_id in enumerate(ids):
                await conn.execute(
                    update(announcements).where(announcements.c.id == ann_id).values(ends_at=None if i < n else past)
                )
    finally:
        await engine.dispose()


def throughput(
    url: str, base: str, floor: str, token: str, concurrencies: list[int], seconds: float
) -> list[tuple[str, int, float, float, float, float, int]]:
    """(endpoint, c, Herald req/s, Herald p99, floor req/s, floor p99, errors) per endpoint and concurrency."""
    out = []
    for c in concurrencies:
        for name, herald_path, floor_path in (
            ("inbox?limit=20", "/v1/me/inbox?limit=20", "/inbox"),
            ("inbox/counts", "/v1/me/inbox/counts", "/counts"),
        ):
            h_rate, h_p99, h_err = wrk(base + herald_path, token, c, seconds)
            f_rate, f_p99, f_err = wrk(floor + floor_path, None, c, seconds)
            out.append((name, c, h_rate, h_p99, f_rate, f_p99, h_err + f_err))
    return out


async def expected_from_database(url: str) -> dict[str, int]:
    """The hot user's unread counts, counted directly (for ``--reuse``)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT category, count(*) FROM inbox_items WHERE user_id = $1 AND read_at IS NULL"
            " AND archived_at IS NULL AND (expires_at IS NULL OR expires_at > now()) GROUP BY category",
            HOT,
        )
    finally:
        await conn.close()
    return {**{r[0]: int(r[1]) for r in rows}, "announcement": LIVE_ANNOUNCEMENTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up rounds (not measured)")
    parser.add_argument("--depth", type=int, default=5000, help="how deep the cursor page is, in items")
    parser.add_argument("--concurrency", default="2,8,32", help="wrk connections for the throughput table")
    parser.add_argument("--seconds", type=float, default=8.0, help="wrk duration per cell")
    parser.add_argument(
        "--announcement-sweep", default=f"0,{LIVE_ANNOUNCEMENTS},{MAX_ANNOUNCEMENTS}",
        help="live announcement counts to measure inbox throughput with (c=8)",
    )  # fmt: skip
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: keep the database a previous run built")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.serve_floor:
        serve_floor(args.serve_floor, args.port)
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is needed for the throughput table: apt-get install -y wrk")

    tmpdir = None
    is_pg = args.db == "postgres"
    if is_pg:
        url = args.pg_url
        if not args.reuse:
            asyncio.run(fresh_postgres(url))
    else:
        tmpdir = tempfile.mkdtemp(prefix="herald-bench-")
        url = f"sqlite+aiosqlite:///{os.path.join(tmpdir, 'herald.db')}"
    proc = floor_proc = None
    try:
        t = time.perf_counter()
        if args.reuse and is_pg:
            asyncio.run(migrate_only(url))  # a database built by an older checkout gets its new migrations
            asyncio.run(set_live_announcements(url, LIVE_ANNOUNCEMENTS))
            expected = asyncio.run(expected_from_database(url))
        else:
            expected = asyncio.run(build_database(url, is_pg))
        print(
            f"setup: 1,000,000 inbox items on {args.db} in {time.perf_counter() - t:.1f} s (not measured); "
            f"hot user unread: {expected}",
            flush=True,
        )
        proc, base = start_server(url)
        token, _ = mint_user_token(SECRET, HOT, 24 * 3600)
        load_before = os.getloadavg()[0]
        result = measure(base, token, expected, args.requests, args.warmup, args.depth)
        load_after = os.getloadavg()[0]
        floor_proc, floor = start_server(url, floor=True)
        concurrencies = [int(c) for c in args.concurrency.split(",")]
        table = throughput(url, base, floor, token, concurrencies, args.seconds)
        sweep = []
        for n in [int(x) for x in args.announcement_sweep.split(",")]:
            asyncio.run(set_live_announcements(url, n))
            time.sleep(2.5)  # past the announcement cache's TTL
            inbox_rate = wrk(base + "/v1/me/inbox?limit=20", token, 8, args.seconds)[0]
            counts_rate = wrk(base + "/v1/me/inbox/counts", token, 8, args.seconds)[0]
            sweep.append((n, inbox_rate, counts_rate))
        load_end = os.getloadavg()[0]
    finally:
        if proc is not None:
            stop_server(proc)
        if floor_proc is not None:
            stop_server(floor_proc)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)

    samples = result["samples"]
    names = list(samples)
    base_ms = sorted(samples[names[0]])
    b50, b99 = percentile(base_ms, 50), percentile(base_ms, 99)
    print()
    print(
        f"Inbox read latency, hot user with {HOT_ITEMS:,} items in a 1,000,000-row inbox — {args.db}, "
        f"{os.cpu_count()} CPUs, load avg {load_before:.1f}→{load_after:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"{len(base_ms)} sequential keep-alive requests per endpoint over loopback, after {args.warmup} warm-up rounds"
    )
    head = f"{'endpoint':<46} {'p50 ms':>7} {'p99 ms':>7} {'p50 ×base':>10} {'p99 ×base':>10} {'p99 <= 5 ms':>12}"
    print(head)
    print("-" * len(head))
    for name in names:
        ms = sorted(samples[name])
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        verdict = "" if name == names[0] else ("yes" if p99 <= 5 else "NO")
        print(f"{name:<46} {p50:>7.2f} {p99:>7.2f} {p50 / b50:>10.2f} {p99 / b99:>10.2f} {verdict:>12}")
    print(
        f"(mean of baseline {statistics.fmean(base_ms):.2f} ms; ratios are endpoint ÷ baseline at the same percentile)"
    )

    print()
    print(
        f"Throughput (wrk, 2 threads, {args.seconds:g} s per cell), floor = the same queries on the raw driver "
        f"behind a bare ASGI app under the same uvicorn; load avg →{load_end:.1f}"
    )
    head = (
        f"{'endpoint':<16} {'c':>3} {'Herald req/s':>13} {'p99 ms':>7} {'floor req/s':>12} {'p99 ms':>7}"
        f" {'ratio':>6} {'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, c, h_rate, h_p99, f_rate, f_p99, errors in table:
        print(
            f"{name:<16} {c:>3} {h_rate:>13.0f} {h_p99:>7.2f} {f_rate:>12.0f} {f_p99:>7.2f}"
            f" {h_rate / f_rate:>6.2f} {errors:>7}"
        )
    print()
    print("Live announcements (all-user audience) against Herald's throughput at c=8:")
    zero = sweep[0]
    for n, inbox_rate, counts_rate in sweep:
        print(
            f"  {n:>3} live: inbox {inbox_rate:>7.0f} req/s ({inbox_rate / zero[1]:.2f} × {zero[0]} live), "
            f"counts {counts_rate:>7.0f} req/s ({counts_rate / zero[2]:.2f} ×)"
        )


if __name__ == "__main__":
    main()
