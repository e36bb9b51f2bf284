"""A fake chat-robot API for the DingTalk, WeCom and Feishu tests: records each request, answers as told.

Each test module checks the recorded requests against the provider's documented format and
recomputes signatures itself; this module only captures and replays, so it knows no provider rules.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.support import serve_asgi


@dataclass
class RobotRequest:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        """The decoded query: one value per name (a repeated name fails the test)."""
        parsed = parse_qs(self.raw_query, keep_blank_values=True, strict_parsing=bool(self.raw_query))
        assert all(len(v) == 1 for v in parsed.values()), f"repeated query parameter in {self.raw_query!r}"
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeRobot:
    """A raw ASGI app. ``answer`` may be replaced by a callable computing the reply from the request."""

    status: int = 200
    reply: Any = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    raw_body: bytes | None = None
    delay: float = 0
    answer: Callable[[RobotRequest], tuple[int, Any]] | None = None
    requests: list[RobotRequest] = field(default_factory=list)

    def reset(self, reply: Any) -> None:
        self.status, self.reply, self.headers, self.raw_body, self.delay, self.answer = 200, reply, [], None, 0, None
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
        request = RobotRequest(scope["method"], scope["path"], scope["query_string"].decode("ascii"), headers, body)
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        status, reply = self.answer(request) if self.answer else (self.status, self.reply)
        payload = self.raw_body if self.raw_body is not None else json.dumps(reply, ensure_ascii=False).encode()
        response_headers = [(b"content-type", b"application/json; charset=utf-8"), *self.headers]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


@contextmanager
def running_robot(port: int, reply: Any) -> Iterator[tuple[FakeRobot, str]]:
    robot = FakeRobot(reply=reply)
    with serve_asgi(robot, port) as base:
        yield robot, base
