"""Realtime across processes as an operator runs Herald scaled out: two ``herald api`` processes and one
``herald worker`` on PostgreSQL + Redis. A notification sent to process A reaches an SSE client connected
to process B (inline, and through the worker's fan-out); an announcement edited on A is visible on B
within a second (its edge cache invalidated over the backplane, not waiting for the cache's TTL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL, REDIS_URL, SECRET, _reset_postgres, make_settings
from tests.realtime.support import Live, make_keys, sse
from tests.support import free_port, wait_for_ok

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_URL and REDIS_URL), reason="needs PostgreSQL and Redis (both required under CI=true)"),
]


def environment(metrics_port: int) -> dict[str, str]:
    assert PG_URL and REDIS_URL
    return {
        **os.environ,
        "HERALD_DATABASE_URL": PG_URL,
        "HERALD_REDIS_URL": REDIS_URL,
        "HERALD_SECRET_KEY": SECRET,
        "HERALD_AUTO_MIGRATE": "false",
        "HERALD_WORKER_METRICS_PORT": str(metrics_port),
        "HERALD_WORKER_POLL_SECONDS": "0.2",
        "HERALD_INLINE_FANOUT_LIMIT": "2",  # three recipients or more: the worker's fan-out job
        "HERALD_LOG_LEVEL": "warning",
    }


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "herald.cli", *args], env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_two_api_processes_and_a_worker_share_events_and_edits(tmp_path: Path) -> None:
    assert PG_URL
    await _reset_postgres(PG_URL)
    admin_key, send_key = await make_keys(make_settings(PG_URL))
    port_a, port_b, metrics = free_port(), free_port(), free_port()
    env = environment(metrics)
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "worker")}
    with ExitStack() as stack:
        a = stack.enter_context(process(["api", "--port", str(port_a)], env, logs["a"]))
        b = stack.enter_context(process(["api", "--port", str(port_b)], env, logs["b"]))
        worker = stack.enter_context(process(["worker"], env, logs["worker"]))
        await asyncio.to_thread(wait_for_ok, f"http://127.0.0.1:{port_a}/readyz", a, logs["a"])
        await asyncio.to_thread(wait_for_ok, f"http://127.0.0.1:{port_b}/readyz", b, logs["b"])
        await asyncio.to_thread(wait_for_ok, f"http://127.0.0.1:{metrics}/healthz", worker, logs["worker"])

        on_a = Live(f"http://127.0.0.1:{port_a}", None, admin_key, send_key)  # type: ignore[arg-type]
        on_b = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}", timeout=10)
        try:
            await on_a.put_inbox_type()
            async with sse(on_b, "/v1/me/events", headers=on_a.user("alice")) as events:
                await events.until("counts")

                # inline: written and published by A, delivered by B
                started = time.monotonic()
                await on_a.trigger("order.paid", ["alice"], order="o-a", amount="1")
                new = await events.until("inbox.new", timeout=5)
                inline_seconds = time.monotonic() - started
                assert new.data["title"] == "订单 o-a 已支付"

                # fan-out: expanded and published by the worker, delivered by B
                await on_a.trigger("order.paid", ["alice", "bob", "carol"], order="o-w", amount="2")
                new = await events.until("inbox.new", timeout=10)
                assert new.data["title"] == "订单 o-w 已支付"
                assert (await events.until("counts")).data["total"] == 2

                # an announcement made on A, then edited on A right after B loaded it
                r = await on_a.client.post("/v1/announcements", json={"title": "v1"}, headers=on_a.admin())
                assert r.status_code == 201, r.text
                announcement_id = r.json()["id"]
                assert (await events.until("announcement.new", timeout=5)).data["title"] == "v1"
                feed = (await on_b.get("/v1/me/inbox", headers=on_a.user("alice"))).json()["items"]
                assert feed[0]["title"] == "v1"  # B's cache holds v1 now, for its 2-second TTL

                r = await on_a.client.patch(
                    f"/v1/announcements/{announcement_id}", json={"title": "v2"}, headers=on_a.admin()
                )
                assert r.status_code == 200
                edited = time.monotonic()
                while True:
                    feed = (await on_b.get("/v1/me/inbox", headers=on_a.user("alice"))).json()["items"]
                    if feed[0]["title"] == "v2":
                        break
                    assert time.monotonic() - edited < 1, "the edit was not visible on B within 1 s"
                    await asyncio.sleep(0.02)
                visible_seconds = time.monotonic() - edited
                assert (await events.until("announcement.updated", timeout=5)).data["title"] == "v2"
        finally:
            await on_a.client.aclose()
            await on_b.aclose()
    for name, log in logs.items():
        assert "Traceback" not in log.read_text(), (name, log.read_text())
    print(
        f"inline trigger on A -> SSE on B: {inline_seconds * 1000:.0f} ms; edit on A visible on B: "
        f"{visible_seconds * 1000:.0f} ms"
    )
