"""The two reads every open page repeats, ``GET /v1/me/inbox`` and ``GET /v1/me/inbox/counts``, served
before FastAPI's routing and dependency solving.

A widget or an app polls these all day; FastAPI's per-request work (matching ~60 routes, solving the
dependency graph, validating each query parameter through pydantic) cost more than the queries. This
ASGI middleware answers a request only when it is plainly valid: a GET on exactly one of the two paths,
a query string of known parameters with valid values (no escapes, no repeats), a valid user token. It
calls the same engine functions and renders the same bytes as the routes in ``api/me.py``. Anything
else, including any exception while answering, goes on to those routes, which document the operations
(OpenAPI) and answer every error (401, 422, 503) as always: a read run twice is harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from herald.api.auth import API_KEY_PREFIX, UserTokenCache
from herald.api.me import inbox_page_response
from herald.core import rawjson
from herald.core.enums import Category
from herald.core.inputs import text_problem
from herald.engine import inbox
from herald.engine.service import Herald
from herald.engine.tokens import BadToken

log = logging.getLogger(__name__)

INBOX = "/v1/me/inbox"
COUNTS = "/v1/me/inbox/counts"
_STATUSES = frozenset({"all", "read", "unread"})
_CATEGORIES = frozenset(c.value for c in Category)
_BOOLEANS = {"true": True, "false": False}
_MAX_CURSOR = 500  # as the route's Query(max_length=500)


def feed_params(query: bytes) -> dict[str, Any] | None:
    """The feed's arguments from a plain query string, or None when the route should judge it."""
    params: dict[str, Any] = {"status": "all", "category": None, "archived": False, "limit": 20, "cursor": None}
    if not query:
        return params
    if b"%" in query or b"+" in query:
        return None  # escapes: decoding, and the checks on decoded text, are the route's
    try:
        text = query.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.isprintable():
        return None
    seen: set[str] = set()
    for pair in text.split("&"):
        name, sep, value = pair.partition("=")
        if not sep or name in seen:
            return None
        seen.add(name)
        if name == "status" and value in _STATUSES:
            params["status"] = value
        elif name == "category" and value in _CATEGORIES:
            params["category"] = value
        elif name == "archived" and value in _BOOLEANS:
            params["archived"] = _BOOLEANS[value]
        elif name == "limit" and value.isdigit() and len(value) <= 3 and 1 <= int(value) <= 100:
            params["limit"] = int(value)
        elif name == "cursor" and len(value) <= _MAX_CURSOR:
            params["cursor"] = value or None
        else:
            return None
    return params


def bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class HotInbox:
    """ASGI middleware; ``stats`` counts the requests it answered and those it passed on."""

    def __init__(self, app: Any, herald: Herald, tokens: UserTokenCache, stats: dict[str, int]) -> None:
        self.app = app
        self.herald = herald
        self.tokens = tokens
        self.stats = stats

    def user(self, scope: dict[str, Any]) -> str | None:
        token = bearer(scope.get("headers", []))
        if token is None or token.startswith(API_KEY_PREFIX) or token.count(".") != 2:
            return None
        try:
            user_id = self.tokens.verify(
                self.herald.secret_key, token, max_lifetime=self.herald.settings.user_token_max_seconds
            )
        except BadToken:
            return None
        return None if text_problem(user_id) is not None else user_id

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "GET" or (path != INBOX and path != COUNTS):
            await self.app(scope, receive, send)
            return
        body = await self.answer(scope, path)
        if body is None:
            self.stats["passed"] += 1
            await self.app(scope, receive, send)
            return
        self.stats["served"] += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def answer(self, scope: dict[str, Any], path: str) -> bytes | None:
        query = scope.get("query_string", b"")
        params = feed_params(query) if path == INBOX else ({} if not query else None)
        if params is None:
            return None
        user_id = self.user(scope)
        if user_id is None:
            return None
        try:
            if path == COUNTS:
                return rawjson.dumps(await inbox.counts(self.herald, user_id))
            page = await inbox.feed(self.herald, user_id, **params)
            return bytes(inbox_page_response(page).body)
        except Exception:  # the route runs the read again and answers the error as it always does
            log.debug("hot inbox read passed on to the route", exc_info=True)
            return None
