"""`herald worker` as an operator runs it: its own /healthz and /metrics, the queue it sees, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from herald.api.worker_ops import WorkerHealth, create_worker_ops_app
from herald.app import create_app
from herald.engine.service import Herald
from herald.store.apikeys import create_api_key
from tests.conftest import SECRET, make_settings
from tests.support import SECRET as WEBHOOK_SECRET
from tests.support import free_port, silent_listener, wait_for_ok

METRIC_NAMES = (
    "herald_sends_in_flight",
    "herald_sends_total",
    "herald_send_seconds",
    "herald_deliveries_due",
    "herald_oldest_due_delivery_age_seconds",
)


# -- the ops app in-process -----------------------------------------------------------------------


@asynccontextmanager
async def ops_client(tmp_path: Path, health: WorkerHealth) -> AsyncIterator[httpx.AsyncClient]:
    herald = Herald(make_settings(f"sqlite+aiosqlite:///{tmp_path}/ops.db"))
    app = create_worker_ops_app(herald, health)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker") as client:
            yield client
    finally:
        await herald.close()


async def test_healthz_follows_the_worker_loop(tmp_path: Path) -> None:
    health = WorkerHealth()
    release = asyncio.Event()
    async with ops_client(tmp_path, health) as client:
        r = await client.get("/healthz")
        assert r.status_code == 503 and r.json()["detail"] == "worker not started"

        health.task = asyncio.create_task(release.wait())
        r = await client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}

        health.stop_requested = True
        r = await client.get("/healthz")
        assert r.status_code == 503 and r.json()["detail"] == "worker is stopping"

        release.set()
        await health.task
        r = await client.get("/healthz")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == "worker stopped"


async def test_healthz_reports_a_crash(tmp_path: Path) -> None:
    async def crash() -> None:
        raise RuntimeError("boom")

    health = WorkerHealth(task=asyncio.create_task(crash()))
    await asyncio.wait([health.task])  # type: ignore[list-item]
    async with ops_client(tmp_path, health) as client:
        r = await client.get("/healthz")
    assert r.status_code == 503 and r.json()["detail"] == "worker crashed: RuntimeError"


async def test_metrics_survive_an_unreachable_database(tmp_path: Path) -> None:
    # The database file was never migrated: the queue query fails, the scrape does not.
    health = WorkerHealth()
    async with ops_client(tmp_path, health) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    for name in METRIC_NAMES:
        assert f"# TYPE {name} " in r.text


# -- the real process ----------------------------------------------------------------------------


def herald_env(db: Path, metrics_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HERALD_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "HERALD_SECRET_KEY": SECRET,
        "HERALD_AUTO_MIGRATE": "false",
        "HERALD_WORKER_METRICS_PORT": str(metrics_port),
        # one send at a time: while it hangs, the rest of the queue stays due
        "HERALD_WORKER_CONCURRENCY": "1",
        "HERALD_WORKER_BATCH_SIZE": "1",
        "HERALD_WORKER_POLL_SECONDS": "0.1",
        "HERALD_LEASE_SECONDS": "60",
        "HERALD_LOG_LEVEL": "info",
    }


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    return wait_for_ok(f"{base}/healthz", proc, log, timeout=30)


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{base}/metrics", timeout=5)
    assert r.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


async def trigger_webhooks(db: Path, sink_port: int, users: list[str]) -> None:
    """Through the public API, in this process, on the worker's database file (no worker here)."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{db}"), run_worker=False)
    herald: Herald = app.state.herald
    async with app.router.lifespan_context(app):
        async with herald.db.write() as conn:
            _, key = await create_api_key(conn, "test", ["admin"])
        headers = {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test", headers=headers) as client:
            account = {"url": f"http://127.0.0.1:{sink_port}/hook", "secret": WEBHOOK_SECRET, "timeout": 30}
            r = await client.put("/v1/channel-accounts/sink", json={"channel": "webhook", "config": account})
            assert r.status_code in (200, 201), r.text
            r = await client.put("/v1/notification-types/probe", json={"channels": ["webhook"]})
            assert r.status_code in (200, 201), r.text
            r = await client.post("/v1/notifications", json={"type": "probe", "to": users})
            assert r.status_code == 202, r.text


@pytest.mark.slow
def test_worker_serves_health_and_queue_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    db, log = tmp_path / "herald.db", tmp_path / "worker.log"
    metrics_port, sink_port = free_port(), free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    env = herald_env(db, metrics_port)
    subprocess.run([sys.executable, "-m", "herald.cli", "migrate"], env=env, check=True, capture_output=True)

    with silent_listener(sink_port) as held, log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "herald.cli", "worker"], env=env, stdout=out, stderr=out)
        try:
            assert wait_healthy(base, proc, log).json() == {"status": "ok"}
            exposition = httpx.get(f"{base}/metrics").text
            for name in METRIC_NAMES:
                assert f"# TYPE {name} " in exposition, name
            samples = scrape(base)
            assert samples[("herald_oldest_due_delivery_age_seconds", ())] == 0

            asyncio.run(trigger_webhooks(db, sink_port, ["u1", "u2", "u3"]))
            # One send hangs at the sink and holds the only slot; the other two wait, due.
            due_key = ("herald_deliveries_due", (("channel", "webhook"), ("priority", "normal")))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                samples = scrape(base)
                if samples.get(due_key) == 2 and held:
                    break
                time.sleep(0.2)
            assert samples.get(due_key) == 2 and held, (samples.get(due_key), len(held), log.read_text())
            assert samples[("herald_oldest_due_delivery_age_seconds", ())] >= 0
            assert samples[("herald_sends_in_flight", ())] == 1

            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            try:  # the send in hand is still hanging: the worker drains, the server says so
                r = httpx.get(f"{base}/healthz", timeout=2)
            except httpx.HTTPError:
                pass  # a worker that gives its sends back at once may already be gone
            else:
                assert r.status_code == 503, r.text
                assert r.headers["content-type"] == "application/problem+json"
            for conn in held:  # the hanging send fails now, and the worker can finish
                conn.close()
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "Traceback" not in text, text
    with pytest.raises(httpx.ConnectError):  # the metrics server went with the worker
        httpx.get(f"{base}/healthz", timeout=2)


@pytest.mark.slow
def test_metrics_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "herald.db").touch()  # `herald worker` refuses to start without a database
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "herald.cli", "worker"],
            env=herald_env(tmp_path / "herald.db", port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    # beside the start log line (which database, which Redis), one line for the operator
    lines = [line for line in proc.stderr.strip().splitlines() if " INFO herald: worker: database " not in line]
    assert lines == [f"herald: cannot serve worker metrics on 127.0.0.1:{port}: Address already in use"], proc.stderr
