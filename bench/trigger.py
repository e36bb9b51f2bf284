#!/usr/bin/env python
"""Trigger throughput over real HTTP: one in-app recipient per notification, single and batch.

    python bench/trigger.py --db sqlite
    python bench/trigger.py --db postgres [--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench]

Setup (not measured): a fresh, migrated database; ``--users`` users (the recipients already exist,
as they do in a business system that has been running a while); the type ``bench.trigger`` with
channel ``inapp`` and an ``inapp`` template whose title, summary and body use ``${n}``; an API key
with the ``send`` scope.

Measured: the real app (``create_app(settings, run_worker=False)``) served by uvicorn in a child
process on 127.0.0.1, one process, and the **floor**: a bare ASGI app under the same uvicorn in
another child process that does the same transaction with the raw driver (asyncpg / aiosqlite) —
the same rows into the same tables (a user upsert that keeps an existing user, the notification
row, its inbox item), one transaction per trigger, no auth, no framework, the template rendered by
``str.replace``. This process drives both with httpx at a few concurrencies for a fixed time each,
Herald then floor, and prints accepted/s, client-side latency, and Herald ÷ floor.

Batch mode: ``POST /v1/notifications/batch`` with batches of 100 and 1,000 entries against a floor
route that inserts the same rows (users, notifications, inbox items) for the whole batch in one
transaction (asyncpg ``executemany`` / SQLite ``executemany``).

The client ceiling line is the same client against a floor route that touches no database: when
the floor comes close to it, the client (httpx in one process) bounds the figures, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from _support import asyncpg_dsn, free_port, fresh_postgres, stop_server, wait_until_serving
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from herald.core.ids import new_ids
from herald.store import catalog
from herald.store.apikeys import create_api_key
from herald.store.db import create_engine
from herald.store.migrate import upgrade
from herald.store.tables import users

SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench"
TYPE_KEY = "bench.trigger"
TEMPLATE = {"title": "订单 ${n} 已发货", "summary": "Order ${n} shipped", "body": "Order ${n} left the warehouse."}
SERVER_START_TIMEOUT_S = 60.0


# -- setup (not measured) ------------------------------------------------------------------------


async def build_database(url: str, n_users: int) -> str:
    """Migrate, add the users, the type and its template; return a ``send`` API key."""
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            rows = [
                {"id": user_id(i), "channels": {}, "tags": [], "data": {}, "created_at": now, "updated_at": now}
                for i in range(n_users)
            ]
            for start in range(0, len(rows), 10_000):
                await conn.execute(insert(users), rows[start : start + 10_000])
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
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                ac = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await ac.exec_driver_sql("VACUUM ANALYZE")
        return key
    finally:
        await engine.dispose()


async def add_inapp_opt_outs(url: str, count: int) -> None:
    """``count`` users outside the recipients who turned the inbox off for the bench type, as
    ``PUT /v1/me/preferences`` stores it: the trigger can no longer skip the read of its recipients'
    in-app choices, and every recipient still gets their item."""
    from herald.core.preferences import Choice, Preferences, inapp_choices
    from herald.engine.preferences import CATEGORIES
    from herald.store import preferences as preference_store
    from herald.store import users as user_store

    prefs = Preferences(types={TYPE_KEY: Choice(channels={"inapp": False})})
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for i in range(count):
                await user_store.ensure_users(conn, [f"optout{i:07d}"])
                choices = inapp_choices(prefs, CATEGORIES)
                await preference_store.put_document(conn, f"optout{i:07d}", prefs, choices, datetime.now(UTC))
    finally:
        await engine.dispose()


def user_id(i: int) -> str:
    return f"user{i:07d}"


# -- the servers (child processes) ---------------------------------------------------------------


def serve(url: str, port: int, profile: str | None) -> None:
    import uvicorn

    from herald.app import create_app
    from herald.config import Settings

    settings = Settings(database_url=url, secret_key=SECRET, auto_migrate=False, log_level="warning")
    app = create_app(settings, run_worker=False)
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)  # type: ignore[arg-type]


NOTIFICATION_COLUMNS = [
    "id", "type_key", "category", "priority", "status", "channels", "data", "actor", "target", "rendered",
    "audience", "accounts", "recipients", "send_at", "expires_at", "created_at", "updated_at",
]  # fmt: skip
ITEM_COLUMNS = [
    "id", "user_id", "notification_id", "type_key", "category", "title", "summary", "body", "data", "actor",
    "target", "action_url", "actions", "read_at", "seen_at", "archived_at", "created_at", "expires_at",
]  # fmt: skip
USER_COLUMNS = ["id", "channels", "tags", "data", "created_at", "updated_at"]


def _insert_sql(table: str, columns: list[str], pg: bool, suffix: str = "") -> str:
    marks = [f"${i + 1}" for i in range(len(columns))] if pg else ["?"] * len(columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marks)}){suffix}"


def serve_floor(url: str, port: int) -> None:
    """What a hand-written trigger endpoint does with the raw driver: parse the JSON body, render
    the template by ``str.replace``, and in one transaction upsert the user (keeping an existing
    one), insert the notification row and its inbox item; answer 202 with the id. No auth, no
    validation beyond what the rows need, no framework."""
    import uvicorn

    is_pg = url.startswith("postgresql")
    state: dict[str, Any] = {}
    sql_user = _insert_sql("users", USER_COLUMNS, is_pg, " ON CONFLICT (id) DO NOTHING")
    sql_notification = _insert_sql("notifications", NOTIFICATION_COLUMNS, is_pg)
    sql_item = _insert_sql("inbox_items", ITEM_COLUMNS, is_pg)

    def when(moment: datetime) -> Any:
        # SQLite: what Herald stores, naive UTC text
        return moment if is_pg else moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def rows_for(entries: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], ...]:
        now = when(datetime.now(UTC))
        user_rows, notification_rows, item_rows, accepted = [], [], [], []
        ids, item_ids = new_ids("ntf", len(entries)), new_ids("itm", len(entries))
        for entry, nid, iid in zip(entries, ids, item_ids, strict=True):
            uid, data = entry["to"][0], entry.get("data") or {}
            fields = {k: v.replace("${n}", str(data.get("n", ""))) for k, v in TEMPLATE.items()}
            data_json = json.dumps(data)
            user_rows.append((uid, "{}", "[]", "{}", now, now))
            notification_rows.append((
                nid, entry["type"], "reminder", "normal", "processed", '["inapp"]', data_json, "null", "null",
                json.dumps({"inapp": {"en": fields}}), "null", "null", 1, None, None, now, now,
            ))  # fmt: skip
            item_rows.append((
                iid, uid, nid, entry["type"], "reminder", fields["title"], fields["summary"], fields["body"],
                data_json, "null", "null", None, "[]", None, None, None, now, None,
            ))  # fmt: skip
            accepted.append({"id": nid, "status": "accepted", "recipients": 1})
        return user_rows, notification_rows, item_rows, accepted

    async def write(user_rows: list[Any], notification_rows: list[Any], item_rows: list[Any]) -> None:
        if is_pg:
            async with state["pool"].acquire() as conn, conn.transaction():
                if len(user_rows) == 1:
                    await conn.execute(sql_user, *user_rows[0])
                    await conn.execute(sql_notification, *notification_rows[0])
                    await conn.execute(sql_item, *item_rows[0])
                else:
                    await conn.executemany(sql_user, user_rows)
                    await conn.executemany(sql_notification, notification_rows)
                    await conn.executemany(sql_item, item_rows)
            return
        async with state["lock"]:  # SQLite: one writer, as in Herald
            db = state["db"]
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(sql_user, user_rows)
                await db.executemany(sql_notification, notification_rows)
                await db.executemany(sql_item, item_rows)
            except BaseException:
                await db.rollback()
                raise
            await db.commit()

    async def read_body(receive: Any) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def lifespan(receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if is_pg:
                    state["pool"] = await asyncpg.create_pool(asyncpg_dsn(url), min_size=4, max_size=20)
                else:
                    import aiosqlite

                    db = await aiosqlite.connect(make_url(url).database, isolation_level=None)
                    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=15000"):
                        await db.execute(f"PRAGMA {pragma}")
                    state["db"], state["lock"] = db, asyncio.Lock()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if is_pg:
                    await state["pool"].close()
                else:
                    await state["db"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path = scope["path"]
        status, payload = 200, b'{"status":"ok"}'
        if path == "/trigger":
            entry = json.loads(await read_body(receive))
            user_rows, notification_rows, item_rows, accepted = rows_for([entry])
            await write(user_rows, notification_rows, item_rows)
            status, payload = 202, json.dumps(accepted[0]).encode()
        elif path == "/batch":
            entries = json.loads(await read_body(receive))["notifications"]
            user_rows, notification_rows, item_rows, accepted = rows_for(entries)
            await write(user_rows, notification_rows, item_rows)
            results = [{"index": i, "status": 202, "id": a["id"], "error": None} for i, a in enumerate(accepted)]
            payload = json.dumps({"results": results}).encode()
        elif path == "/noop":  # the client ceiling: HTTP and the body, no database
            await read_body(receive)
            status, payload = 202, b'{"id":"ntf_x","status":"accepted","recipients":1}'
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(url: str, *, floor: bool = False, profile: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, os.path.abspath(__file__), "--serve-floor" if floor else "--serve", url, "--port", str(port)]
    if profile:
        cmd += ["--profile-out", profile]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, base, SERVER_START_TIMEOUT_S)
    return proc, base


# -- load ----------------------------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        self.next += 1
        return self.next


def trigger_body(n: int, n_users: int) -> dict[str, Any]:
    return {"type": TYPE_KEY, "to": [user_id(n % n_users)], "data": {"n": n}}


async def drive(
    base: str,
    path: str,
    headers: dict[str, str],
    make_body: Any,
    *,
    per_request: int,
    concurrency: int,
    seconds: float,
) -> tuple[float, list[float], int]:
    """(notifications/s, latencies ms, failed requests): ``concurrency`` clients in a loop for ``seconds``."""
    latencies: list[float] = []
    failed = 0
    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
        for _ in range(2):  # warm-up: connections, caches
            await client.post(path, content=json.dumps(make_body()).encode())
        start = time.perf_counter()
        stop = start + seconds

        async def one_client() -> None:
            nonlocal failed, done
            while time.perf_counter() < stop:
                content = json.dumps(make_body()).encode()
                t0 = time.perf_counter()
                r = await client.post(path, content=content)
                latencies.append((time.perf_counter() - t0) * 1000)
                ok = r.status_code == 202 or (r.status_code == 200 and _all_accepted(r))
                if ok:
                    done += per_request
                else:
                    failed += 1
                    if failed <= 3:
                        print(f"  {path}: {r.status_code} {r.text[:300]}", file=sys.stderr)

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done / elapsed, sorted(latencies), failed


def _all_accepted(r: httpx.Response) -> bool:
    return all(res["status"] == 202 for res in r.json()["results"])


WRK_SCRIPT = """
local n = 0
local users = tonumber(os.getenv("BENCH_USERS"))
local type_key = os.getenv("BENCH_TYPE")
local salt = 0
function setup(thread)
  salt = salt + 1
  thread:set("salt", salt)
end
function init(args)
  n = (salt or 1) * 100000000
end
request = function()
  n = n + 1
  local body = string.format('{"type":"%s","to":["user%07d"],"data":{"n":%d}}', type_key, n % users, n)
  return wrk.format("POST", nil, nil, body)
end
"""


def wrk_drive(
    url: str, headers: dict[str, str], *, concurrency: int, seconds: float, n_users: int
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx and socket errors) from ``wrk`` POSTing trigger bodies."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        cmd = ["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s", "--latency"]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd += ["-s", script.name, url]
        env = {**os.environ, "BENCH_USERS": str(n_users), "BENCH_TYPE": TYPE_KEY}
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60, env=env).stdout
    finally:
        os.unlink(script.name)
    rate = float(out.split("Requests/sec:")[1].split()[0])
    p50 = _wrk_ms(out.split(" 50%")[1].split()[0])
    p99 = _wrk_ms(out.split(" 99%")[1].split()[0])
    errors = 0
    for key in ("Non-2xx or 3xx responses:", "Socket errors:"):
        if key in out:
            tail = out.split(key)[1].split("\n")[0]
            errors += sum(int(x) for x in tail.replace(",", " ").split() if x.isdigit())
    return rate, p50, p99, errors


def _wrk_ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms) + 0.5) - 1))]


async def count_rows(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            n = (await conn.exec_driver_sql("SELECT count(*) FROM notifications")).scalar_one()
            i = (await conn.exec_driver_sql("SELECT count(*) FROM inbox_items")).scalar_one()
        return int(n), int(i)
    finally:
        await engine.dispose()


# -- main ----------------------------------------------------------------------------------------


Cell = tuple[float, float, float, int]
"""notifications/s, p50 ms, p99 ms, failed requests"""


def summarize(result: tuple[float, list[float], int]) -> Cell:
    rate, latencies, failed = result
    return rate, percentile(latencies, 50), percentile(latencies, 99), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--users", type=int, default=10_000, help="existing users the recipients are drawn from")
    parser.add_argument("--concurrency", default="1,8,32", help="requests in flight for the single trigger")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measured cell")
    parser.add_argument(
        "--client", choices=["httpx", "wrk", "both"], default="wrk",
        help="load generator for the single trigger (batches always use httpx); httpx in one process "
        "tops out at a few hundred requests/s here (its ceiling line says so): wrk by default",
    )  # fmt: skip
    parser.add_argument("--batch-sizes", default="100,1000", help="entries per batch ('' to skip batches)")
    parser.add_argument("--batch-concurrency", type=int, default=2, help="batches in flight")
    parser.add_argument("--profile", help="cProfile Herald's server to this file and print its top functions")
    parser.add_argument(
        "--inapp-opt-outs",
        type=int,
        default=0,
        help="users (besides the recipients) who turned the inbox off for the type: each trigger then reads"
        " its recipients' in-app choices (docs/preferences.md)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.profile_out)
        return
    if args.serve_floor:
        serve_floor(args.serve_floor, args.port)
        return
    clients = ["httpx", "wrk"] if args.client == "both" else [args.client]
    if "wrk" in clients and not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk): use --client httpx")

    tmpdir = None
    is_pg = args.db == "postgres"
    if is_pg:
        url = args.pg_url
        asyncio.run(fresh_postgres(url))
    else:
        tmpdir = tempfile.mkdtemp(prefix="herald-bench-")
        url = f"sqlite+aiosqlite:///{os.path.join(tmpdir, 'herald.db')}"
    proc = floor_proc = None
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    rows: list[tuple[str, int, Cell, Cell]] = []
    ceilings: dict[str, float] = {}
    try:
        key = asyncio.run(build_database(url, args.users))
        if args.inapp_opt_outs:
            asyncio.run(add_inapp_opt_outs(url, args.inapp_opt_outs))
        proc, base = start_server(url, profile=args.profile)
        floor_proc, floor = start_server(url, floor=True)
        herald_headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        floor_headers = {"Content-Type": "application/json"}
        counter = Counter()

        def one() -> dict[str, Any]:
            return trigger_body(counter.take(), args.users)

        def httpx_cell(base_url: str, path: str, headers: dict[str, str], c: int, seconds: float) -> Cell:
            return summarize(
                asyncio.run(drive(base_url, path, headers, one, per_request=1, concurrency=c, seconds=seconds))
            )

        def wrk_cell(target: str, headers: dict[str, str], c: int, seconds: float) -> Cell:
            return wrk_drive(target, headers, concurrency=c, seconds=seconds, n_users=args.users)

        load_start = os.getloadavg()[0]
        top = max(concurrencies)
        for client in clients:
            if client == "httpx":
                ceilings[client] = httpx_cell(floor, "/noop", floor_headers, top, 2)[0]
            else:
                ceilings[client] = wrk_cell(floor + "/noop", floor_headers, top, 2)[0]
            for c in concurrencies:
                if client == "httpx":
                    h = httpx_cell(base, "/v1/notifications", herald_headers, c, args.seconds)
                    f = httpx_cell(floor, "/trigger", floor_headers, c, args.seconds)
                else:
                    h = wrk_cell(base + "/v1/notifications", herald_headers, c, args.seconds)
                    f = wrk_cell(floor + "/trigger", floor_headers, c, args.seconds)
                rows.append((f"single ({client})", c, h, f))
        for size in sizes:

            def batch(size: int = size) -> dict[str, Any]:
                return {"notifications": [one() for _ in range(size)]}

            conc = args.batch_concurrency
            h = summarize(
                asyncio.run(
                    drive(base, "/v1/notifications/batch", herald_headers, batch, per_request=size,
                          concurrency=conc, seconds=args.seconds)
                )
            )  # fmt: skip
            f = summarize(
                asyncio.run(
                    drive(floor, "/batch", floor_headers, batch, per_request=size, concurrency=conc,
                          seconds=args.seconds)
                )
            )  # fmt: skip
            rows.append((f"batch of {size} (httpx)", conc, h, f))
        load_end = os.getloadavg()[0]
        notifications_n, items_n = asyncio.run(count_rows(url))
    finally:
        if proc is not None:
            stop_server(proc)
        if floor_proc is not None:
            stop_server(floor_proc)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)

    print()
    print(
        f"Trigger throughput, one in-app recipient each, over HTTP — {args.db}, {os.cpu_count()} CPUs, "
        f"load avg {load_start:.1f}→{load_end:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"rows written: {notifications_n:,} notifications, {items_n:,} inbox items (one each: checked)")
    for client, rate in ceilings.items():
        print(f"client ceiling ({client}, a floor route with no database, c={top}): {rate:,.0f} req/s")
    head = (
        f"{'mode':<24} {'c':>3} {'Herald /s':>10} {'p50 ms':>7} {'p99 ms':>7} {'floor /s':>10} {'p50 ms':>7}"
        f" {'p99 ms':>7} {'ratio':>6} {'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, c, (h_rate, h50, h99, h_err), (f_rate, f50, f99, f_err) in rows:
        print(
            f"{name:<24} {c:>3} {h_rate:>10,.0f} {h50:>7.2f} {h99:>7.2f} {f_rate:>10,.0f} {f50:>7.2f} {f99:>7.2f}"
            f" {h_rate / f_rate:>6.2f} {h_err + f_err:>7}"
        )
    print("(/s = notifications accepted per second; a batch request carries that many notifications)")
    assert notifications_n == items_n, "every notification has exactly one inbox item"
    if args.profile:
        print()
        print(f"Herald server profile ({args.profile}), top 30 by own time:")
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
