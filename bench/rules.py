#!/usr/bin/env python
"""What the delivery rules cost (issue 8): a type with every rule against the same type with none.

    python bench/rules.py                       # PostgreSQL (the database in --pg-url is re-created)
    python bench/rules.py --db sqlite --count 3000

Setup, not measured: a fresh database; a webhook account pointing at a local sink (bench/webhook_bench.py);
two types that send on ``inapp`` and ``webhook`` with the same templates: ``bench.plain`` with no rule,
and ``bench.ruled`` with every rule that lets each delivery through — preferences (each recipient has
a preferences document that keeps both channels on, and quiet hours that are never now), quiet_hours
``defer``, ``dedup_seconds``, a frequency cap per channel and for all channels, a throttle, and an in-app
``merge`` key (each trigger has its own key, so nothing merges but the merge path runs). Digests are
left out: a digested delivery is not sent one by one, which is a different piece of work to time.

Measured, in the same run, alternating plain and ruled:

1. trigger: single-recipient ``POST /v1/notifications`` through the real app over an in-process ASGI
   transport, C requests in flight for S seconds: accepted per second;
2. worker: N webhook deliveries of each type sent by one ``herald worker`` process to the sink: the
   rate from the sink's clock (ids answered 2xx ÷ time from its first request to the last new id).

ratio = ruled ÷ plain (the issue's target: ≥ 0.7). Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from webhook_bench import (
    ACCOUNT,
    DEFAULT_PG_URL,
    WEBHOOK_SECRET,
    api_client,
    fresh_database,
    load,
    sink_process,
    start_worker,
    stop_workers,
    wait_healthy,
    worker_env,
)

TEMPLATE = {"title": "订单 ${n} 已发货", "summary": "Order ${n} shipped", "body": "Order ${n} left the warehouse."}
HOOK_TEMPLATE = {"title": "Order ${n} shipped"}


def ruled_type() -> dict[str, Any]:
    return {
        "channels": ["inapp", "webhook"],
        "quiet_hours": "defer",
        "dedup_seconds": 600,
        "caps": [
            {"channel": "webhook", "per": "day", "max": 1_000_000},
            {"channel": None, "per": "hour", "max": 1_000_000},
        ],
        "throttle": {"max": 1_000_000, "window_seconds": 3600},
        "merge": {"key": "${n}", "window_seconds": 3600},
    }


def quiet_hours_not_now() -> dict[str, str]:
    """A one-hour window twelve hours from now, in UTC: the decision is made and lets everything through."""
    start = datetime.now(UTC) + timedelta(hours=12)
    end = start + timedelta(hours=1)
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "timezone": "UTC"}


async def setup(client: httpx.AsyncClient, hook_url: str, users: int) -> None:
    config = {"url": hook_url, "secret": WEBHOOK_SECRET, "timeout": 10}
    r = await client.put(f"/v1/channel-accounts/{ACCOUNT}", json={"channel": "webhook", "config": config})
    assert r.status_code in (200, 201), r.text
    for key, body in (("bench.plain", {"channels": ["inapp", "webhook"]}), ("bench.ruled", ruled_type())):
        r = await client.put(f"/v1/notification-types/{key}", json=body)
        assert r.status_code in (200, 201), r.text
        for channel, template in (("inapp", TEMPLATE), ("webhook", HOOK_TEMPLATE)):
            r = await client.put(f"/v1/notification-types/{key}/templates/{channel}?locale=zh-CN", json=template)
            assert r.status_code in (200, 201), r.text
    preferences = {"channels": {"webhook": True, "inapp": True}, "quiet_hours": quiet_hours_not_now()}
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            r = await client.put(f"/v1/users/user{i:07d}", json={"name": f"User {i}"})
            assert r.status_code in (200, 201), r.text
            r = await client.put(f"/v1/users/user{i:07d}/preferences", json=preferences)
            assert r.status_code == 200, r.text

    await asyncio.gather(*(one(i) for i in range(users)))


async def trigger_rate(client: httpx.AsyncClient, type_key: str, users: int, concurrency: int, seconds: float) -> float:
    """Single-recipient triggers per second, ``concurrency`` in flight for ``seconds``."""
    counter = iter(range(10**9))
    nonce = time.monotonic_ns()  # every cell's own keys: nothing merges with (or is a duplicate of) another's
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            n = next(counter)
            body = {"type": type_key, "to": [f"user{n % users:07d}"], "data": {"n": f"{type_key}-{nonce}-{n}"}}
            r = await client.post("/v1/notifications", json=body)
            assert r.status_code == 202, r.text
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def drop_queued_deliveries(url: str) -> None:
    """The webhook deliveries the trigger cells queued: not this cell's work."""
    from sqlalchemy import delete

    from herald.store.db import create_engine
    from herald.store.tables import deliveries

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(deliveries).where(deliveries.c.status.in_(("pending", "sending"))))
    finally:
        await engine.dispose()


async def worker_rate(url: str, client: httpx.AsyncClient, sink: Any, type_key: str, count: int, users: int) -> float:
    """Webhook deliveries per second sent by one worker process (the sink's clock)."""
    await drop_queued_deliveries(url)
    sink.reset("healthy")
    nonce = time.monotonic_ns()
    for start in range(0, count, 500):
        triggers = [
            {
                "type": type_key,
                "to": [f"user{i % users:07d}"],
                "data": {"n": f"w-{type_key}-{nonce}-{i}"},
                "channels": ["webhook"],
            }
            for i in range(start, min(count, start + 500))
        ]
        r = await client.post("/v1/notifications/batch", json={"notifications": triggers})
        assert r.status_code in (200, 202, 207), r.text
    with tempfile.TemporaryDirectory(prefix="herald-rules-") as logs:
        worker = start_worker(worker_env(url, worker_concurrency=64), logs)
        try:
            wait_healthy(worker)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if sink.progress()["ok_ids"] >= count:
                    break
                await asyncio.sleep(0.2)
            report = sink.report()
        finally:
            stop_workers([worker])
    first, last = report.get("first_at"), report.get("last_new_ok_at")
    seconds = (last - first) if first is not None and last is not None else 0
    ok = int(report.get("ok_ids") or 0)
    if ok < count:
        print(f"  ! {type_key}: only {ok} of {count} delivered (see the worker log)")
    return ok / seconds if seconds else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("HERALD_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--count", type=int, default=10_000, help="webhook deliveries per type for the worker")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    async with fresh_database(args.db, args.pg_url) as url:
        with sink_process() as sink:
            async with api_client(url) as (_, client):
                await setup(client, sink.hook_url, args.users)
                print(f"bench/rules.py on {args.db}: load {load()}")
                rows: dict[str, list[float]] = {"plain": [], "ruled": []}
                for _ in range(args.rounds):
                    for name in ("plain", "ruled"):
                        rate = await trigger_rate(client, f"bench.{name}", args.users, args.concurrency, args.seconds)
                        rows[name].append(rate)
                print(f"trigger, c={args.concurrency}, {args.seconds:.0f} s per cell (accepted/s):")
                for name, rates in rows.items():
                    print(f"  {name:6} " + "  ".join(f"{r:8.0f}" for r in rates))
                ratios = [r / p for r, p in zip(rows["ruled"], rows["plain"], strict=True)]
                print("  ratio  " + "  ".join(f"{r:8.2f}" for r in ratios) + "   (ruled ÷ plain)")

                work: dict[str, list[float]] = {"plain": [], "ruled": []}
                for _ in range(args.rounds):
                    for name in ("plain", "ruled"):
                        work[name].append(await worker_rate(url, client, sink, f"bench.{name}", args.count, args.users))
                print(f"worker, one process, {args.count} webhook deliveries per cell (sent/s):")
                for name, rates in work.items():
                    print(f"  {name:6} " + "  ".join(f"{r:8.0f}" for r in rates))
                ratios = [r / p if p else 0.0 for r, p in zip(work["ruled"], work["plain"], strict=True)]
                print("  ratio  " + "  ".join(f"{r:8.2f}" for r in ratios) + f"   (ruled ÷ plain), load {load()}")


if __name__ == "__main__":
    asyncio.run(main())
