"""Crash recovery: trigger with the mail server hanging, kill -9 Herald mid-send, bring the mail
server up, restart Herald: every email arrives, each delivery id at least once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.support import Mailbox, free_port, silent_listener, smtp_server, wait_for_ok

RECIPIENTS = 12


def start_herald(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "herald.cli", "serve"], env=env, stdout=handle, stderr=subprocess.STDOUT
    )


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

    with silent_listener(smtp_port):
        proc = start_herald(env, log)
        try:
            wait_for_ok(f"{base}/readyz", proc, log, timeout=30)
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
            wait_for_ok(f"{base}/readyz", proc, log, timeout=30)
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
