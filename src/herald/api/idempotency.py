"""Idempotency-Key on POSTs that create something (API.md, "Conventions")."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.problems import problem
from herald.engine.service import Herald
from herald.store import idempotency as store
from herald.store.secretbox import SecretBox
from herald.store.types import utcnow

Store = Callable[[AsyncConnection, int, Any], Awaitable[None]]
Handler = Callable[[Store | None], Awaitable[tuple[int, Any]]]


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=4)
def _box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, purpose=b"herald/idempotency-responses/v1")


def seal_response(secret_key: str, body: bytes) -> bytes:
    """A response body as the idempotency table keeps it: encrypted (it may hold a user token)."""
    return _box(secret_key).seal(body.decode()).encode()


def open_response(secret_key: str, stored: bytes) -> bytes | None:
    """The response body a replay sends; None when it cannot be decrypted (the key changed).
    A body stored in the clear by an older Herald (JSON, expiring within 24 h) is sent as is."""
    try:
        return _box(secret_key).open(stored.decode("ascii")).encode()
    except (ValueError, UnicodeDecodeError):
        return stored if stored[:1] in (b"{", b"[") else None


async def idempotent(request: Request, herald: Herald, scope: str, handler: Handler) -> Response:
    """Run ``handler`` once per (scope, Idempotency-Key); replays get the first response back.

    The handler receives a ``store`` callback to save the response inside its own transaction,
    so the response is recorded atomically with what the request created.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        status, body = await handler(None)
        return JSONResponse(body, status_code=status)
    if not key or len(key) > 255:
        return problem(
            400,
            "Idempotency-Key must be 1 to 255 characters",
            errors=[{"field": "Idempotency-Key", "message": "1 to 255 characters"}],
        )
    raw = await request.body()
    request_hash = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + raw).hexdigest()
    async with herald.db.write() as conn:
        claim = await store.claim_key(
            conn,
            scope,
            key,
            request_hash,
            now=utcnow(),
            stale_after=timedelta(seconds=herald.settings.lease_seconds),
        )
    if claim.outcome == "replay":
        replayed = open_response(herald.secret_key, claim.body) if claim.body else b""
        if replayed is None:
            return problem(
                409, "the first response to this Idempotency-Key cannot be read back: was HERALD_SECRET_KEY changed?"
            )
        return Response(
            replayed,
            status_code=claim.status or 200,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    if claim.outcome == "mismatch":
        return problem(409, "this Idempotency-Key was used with a different request body")
    if claim.outcome == "in_flight":
        return problem(409, "a request with this Idempotency-Key is still being processed; retry later")

    stored = False

    async def save(conn: AsyncConnection, status: int, body: Any) -> None:
        nonlocal stored
        await store.store_response(conn, scope, key, status, seal_response(herald.secret_key, _encode(body)))
        stored = True

    try:
        status, body = await handler(save)
    except BaseException:
        async with herald.db.write() as conn:
            await store.release_key(conn, scope, key)
        raise
    if not stored:
        async with herald.db.write() as conn:
            await save(conn, status, body)
    return Response(_encode(body), status_code=status, media_type="application/json")
