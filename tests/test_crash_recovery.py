"""Crash recovery: trigger with the mail server hanging, kill -9 Herald mid-send, bring the mail
server up, restart Herald: every email arrives, each delivery id at least once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.support import Mailbox, free_port, smtp_server

RECIPIENTS = 12


@contextmanager
def hanging_smtp(port: int) -> Iterator[None]:
    """Accepts connections and never greets: every send is stuck in flight."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(100)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def start_herald(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "herald.cli", "serve"], env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("herald did not become ready:\n" + log.read_text())


@pytest.mark.slow
def test_kill_minus_nine_loses_no_email(database_url: str, tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": database_url,
        "HERALD_SECRET_KEY": SECRET,
        "HERALD_PORT": str(http_port),
        "HERALD_LEASE_SECONDS": "2",
        "HERALD_RETRY_BASE_SECONDS": "0.2",
        "HERALD_RETRY_MAX_SECONDS": "1",
        "HERALD_MAX_ATTEMPTS": "50",
        "HERALD_WORKER_POLL_SECONDS": "0.2",
        "HERALD_LOG_LEVEL": "warning",
    }
    key = subprocess.run(
        [sys.executable, "-m", "herald.cli", "apikey", "create", "--name", "crash", "--scopes", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert key.startswith("hk_") and "\n" not in key
    headers = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "herald.log"

    with hanging_smtp(smtp_port):
        proc = start_herald(env, log)
        try:
            wait_ready(base, proc, log)
            account = {"host": "127.0.0.1", "port": smtp_port, "sender": "noreply@example.com", "timeout": 30}
            r = httpx.put(
                f"{base}/v1/channel-accounts/mail", json={"channel": "email", "config": account}, headers=headers
            )
            assert r.status_code == 200, r.text
            r = httpx.put(f"{base}/v1/notification-types/alert", json={"channels": ["email"]}, headers=headers)
            assert r.status_code == 201, r.text
            r = httpx.put(
                f"{base}/v1/notification-types/alert/templates/email", json={"title": "告警 ${n}"}, headers=headers
            )
            assert r.status_code == 200, r.text
            to = [{"id": f"u{i}", "email": f"u{i}@example.com"} for i in range(RECIPIENTS)]
            r = httpx.post(
                f"{base}/v1/notifications", json={"type": "alert", "to": to, "data": {"n": 1}}, headers=headers
            )
            assert r.status_code == 202, r.text
            notification_id = r.json()["id"]
            # wait until the worker is stuck sending
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                status = httpx.get(f"{base}/v1/notifications/{notification_id}", headers=headers).json()
                if any(d["status"] == "sending" for d in status["deliveries"]):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"no delivery went in flight: {status}")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    mailbox = Mailbox()
    with smtp_server(mailbox, smtp_port):
        proc = start_herald(env, log)
        try:
            wait_ready(base, proc, log)
            expected = {d["id"] for d in status["deliveries"]}
            assert len(expected) == RECIPIENTS
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not expected <= set(mailbox.delivery_ids()):
                time.sleep(0.2)
            assert expected <= set(mailbox.delivery_ids()), (expected - set(mailbox.delivery_ids()), log.read_text())
            final = httpx.get(f"{base}/v1/notifications/{notification_id}", headers=headers).json()
            assert {d["status"] for d in final["deliveries"]} == {"sent"}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
