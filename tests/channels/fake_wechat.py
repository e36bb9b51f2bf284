"""A fake WeChat API (uvicorn on loopback) that follows the documented rules the channels rely on.

- ``POST /cgi-bin/stable_token``: checks grant_type / appid (40013) / secret (40125); in normal mode
  returns the current token while it is valid (with its remaining ``expires_in``), a new one after.
- ``POST /cgi-bin/message/template/send`` and ``/cgi-bin/message/subscribe/send``: check that the
  ``access_token`` query is the current token (40001 if unknown or revoked, 42001 if expired), then
  answer the next scripted reply or ``{"errcode": 0, "errmsg": "ok", "msgid": n}``.

Also ``DictCache``: a SharedCache in a dict, written here so the tests depend on no herald cache.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.support import serve_asgi

APP_ID = "wx0123456789abcdef"
APP_SECRET = "4f1e0c5b9a7d3e2f1a0b9c8d7e6f5a4b"
TOKEN_PATH = "/cgi-bin/stable_token"
OA_SEND_PATH = "/cgi-bin/message/template/send"
MP_SEND_PATH = "/cgi-bin/message/subscribe/send"


@dataclass
class WeChatRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeWeChat:
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    expires_in: float = 7200
    token_replies: list[tuple[int, Any]] = field(default_factory=list)
    """Scripted answers for the next stable_token calls, before any rule is checked."""
    send_replies: list[tuple[int, Any]] = field(default_factory=list)
    """Scripted answers for the next sends with a valid token."""
    raw_send_body: bytes | None = None
    requests: list[WeChatRequest] = field(default_factory=list)
    current: str | None = None
    current_expires: float = 0.0
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        self.expires_in, self.raw_send_body, self.current, self.current_expires = 7200, None, None, 0.0
        self.token_replies.clear()
        self.send_replies.clear()
        self.requests.clear()

    @property
    def token_calls(self) -> list[WeChatRequest]:
        return [r for r in self.requests if r.path == TOKEN_PATH]

    @property
    def sends(self) -> list[WeChatRequest]:
        return [r for r in self.requests if r.path != TOKEN_PATH]

    def issue(self) -> str:
        """A new current token, as after someone's force_refresh (invalidates the previous one)."""
        self.current = f"ACCESS_TOKEN_{next(self._serial)}"
        self.current_expires = time.monotonic() + self.expires_in
        return self.current

    def revoke(self) -> None:
        """The current token stops working (another party forced a refresh; WeChat's side reset)."""
        self.current = None

    def _token(self, body: Any) -> tuple[int, Any]:
        if self.token_replies:
            return self.token_replies.pop(0)
        if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
            return 200, {"errcode": 40002, "errmsg": "invalid grant_type"}
        if body.get("appid") != self.app_id:
            return 200, {"errcode": 40013, "errmsg": "invalid appid"}
        if body.get("secret") != self.app_secret:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        if not isinstance(body.get("force_refresh", False), bool):
            return 200, {"errcode": 47001, "errmsg": "data format error"}
        now = time.monotonic()
        if body.get("force_refresh") or self.current is None or self.current_expires <= now:
            self.issue()
        return 200, {"access_token": self.current, "expires_in": max(1, round(self.current_expires - now))}

    def _send(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        token = query.get("access_token", [None])[0]
        if token is None:
            return 200, {"errcode": 41001, "errmsg": "access_token missing"}
        if token != self.current:
            return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if self.current_expires <= time.monotonic():
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        if self.send_replies:
            return self.send_replies.pop(0)
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": 2000000000 + len(self.sends)}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        query = parse_qs(scope["query_string"].decode("ascii"), keep_blank_values=True)
        request = WeChatRequest(scope["method"], scope["path"], query, body)
        self.requests.append(request)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        payload: bytes | None = None
        if scope["method"] != "POST":
            status, reply = 200, {"errcode": 43002, "errmsg": "require POST method"}
        elif scope["path"] == TOKEN_PATH:
            status, reply = self._token(parsed)
        elif scope["path"] in (OA_SEND_PATH, MP_SEND_PATH):
            status, reply = self._send(query)
            payload = self.raw_send_body
        else:
            status, reply = 404, {"errcode": 404, "errmsg": "not found"}
        if payload is None:
            payload = json.dumps(reply, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json; charset=utf-8")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@contextmanager
def running_wechat(port: int) -> Iterator[tuple[FakeWeChat, str]]:
    fake = FakeWeChat()
    with serve_asgi(fake, port) as base:
        yield fake, base


class DictCache:
    """The SharedCache protocol over a dict with monotonic expiry; records each ``set`` ttl."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, float | None]] = {}
        self.ttls: dict[str, float | None] = {}

    async def get(self, key: str) -> str | None:
        value, expires = self.values.get(key, (None, None))
        if value is not None and expires is not None and expires <= time.monotonic():
            del self.values[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        self.ttls[key] = ttl_seconds
        self.values[key] = (value, None if ttl_seconds is None else time.monotonic() + ttl_seconds)

    async def add(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_seconds)
        return True

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)
