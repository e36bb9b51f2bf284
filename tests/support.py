"""Real local peers for tests: a Standard Webhooks receiver (uvicorn on loopback) and an SMTP mailbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


def free_port() -> int:
    """A port nothing listens on right now (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SECRET_BYTES = b"herald-test-signing-key-32-bytes"
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
TOLERANCE_SECONDS = 5 * 60  # the spec's suggested replay window


def verify_standard_webhook(key: bytes, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side of the spec: sign ``id.timestamp.body``, match any ``v1,`` signature."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed_content = f"{msg_id}.{timestamp}.{body.decode('utf-8')}".encode()
    expected = base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A raw ASGI app: records each request and answers with whatever the test set up."""

    key: bytes = SECRET_BYTES
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b"ok"
    delay: float = 0
    requests: list[Received] = field(default_factory=list)

    def reset(self) -> None:
        self.key, self.status, self.headers, self.body, self.delay = SECRET_BYTES, 200, [], b"ok", 0
        self.requests.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        valid = verify_standard_webhook(self.key, headers, body)
        self.requests.append(Received(scope["method"], scope["path"], headers, body, valid))
        await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


@contextmanager
def serve_asgi(app: Any, port: int) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread on 127.0.0.1:port; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append(message_from_bytes(raw, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"

    def delivery_ids(self) -> list[str]:
        return [str(m["X-Herald-Delivery-Id"]) for m in self.messages]


@contextmanager
def smtp_server(mailbox: Mailbox, port: int) -> Iterator[Controller]:
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@contextmanager
def silent_listener(port: int) -> Iterator[list[socket.socket]]:
    """Accepts connections and never reads or answers (an SMTP server that never greets, an HTTP
    receiver that hangs): every send to it stays in flight. Yields the held connections; closing
    them ends those sends with a transport error."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(100)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def wait_for_ok(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 40) -> httpx.Response:
    """Poll ``url`` until it answers 200, failing with the process's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            r = httpx.get(url, timeout=1)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200:\n" + log.read_text())
