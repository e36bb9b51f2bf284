"""Who is calling: an API key with scopes, or a user token that reaches only its own user."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from herald.core.enums import Scope
from herald.core.inputs import text_problem
from herald.engine.service import Herald
from herald.engine.tokens import BadToken, verify_user_token_expiry
from herald.store.apikeys import ApiKey, find_api_key, hash_key

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
API_KEY_PREFIX = "hk_"


async def get_herald(request: Request) -> Herald:  # async: no thread-pool hop per request
    return request.app.state.herald  # type: ignore[no-any-return]


HeraldDep = Annotated[Herald, Depends(get_herald)]


class ApiKeyCache:
    """Resolved keys for a few seconds, so a hot endpoint does not hash-and-query on every call."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}

    def clear(self) -> None:
        self._entries.clear()

    async def resolve(self, herald: Herald, plaintext: str) -> ApiKey | None:
        digest = hash_key(plaintext)
        hit = self._entries.get(digest)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        async with herald.db.read() as conn:
            key = await find_api_key(conn, plaintext)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.ttl, key)
        return key


def _looks_like_user_token(token: str) -> bool:
    """A JWT (three base64url segments, the header starting ``eyJ``), as user tokens are; never an API key."""
    return token.startswith("eyJ") and token.count(".") == 2


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    async def dependency(request: Request, herald: HeraldDep) -> ApiKey:
        token = _bearer(request)
        if token is not None and _looks_like_user_token(token):
            raise HTTPException(
                401,
                "this is a user token; this endpoint needs an API key (Authorization: Bearer hk_…)."
                " User tokens are for /v1/me/…",
                headers=_CHALLENGE,
            )
        if token is None or not token.startswith(API_KEY_PREFIX):
            raise HTTPException(401, "an API key is required (Authorization: Bearer hk_…)", headers=_CHALLENGE)
        key = await request.app.state.api_keys.resolve(herald, token)
        if key is None:
            raise HTTPException(401, "API key is not valid", headers=_CHALLENGE)
        if scope not in key.scopes and not (Scope.ADMIN in key.scopes and Scope(scope).implied_by_admin):
            raise HTTPException(403, f"this API key lacks the '{scope}' scope")
        request.state.api_key = key
        return key  # type: ignore[no-any-return]

    return dependency


class UserTokenCache:
    """Tokens already verified, until their own ``exp``: a widget polling its inbox presents the
    same token again and again, and an HMAC check plus JSON parsing per request adds up."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[str, int]] = {}

    def verify(self, secret: str, token: str, *, max_lifetime: int | None = None) -> str:
        hit = self._entries.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]  # only tokens within the lifetime cap are kept
        user_id, expires = verify_user_token_expiry(secret, token, max_lifetime=max_lifetime)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[token] = (user_id, expires)
        return user_id


async def current_user(request: Request, herald: HeraldDep) -> str:
    """The user id of a valid user token in the Authorization header.

    (``?token=`` will be accepted on the EventSource/WebSocket URLs only, where browsers cannot set
    headers; anywhere else a token in the URL would end up in access logs.)
    """
    token = _bearer(request)
    if not token:
        raise HTTPException(401, "a user token is required (Authorization: Bearer <user token>)", headers=_CHALLENGE)
    if token.startswith(API_KEY_PREFIX):
        raise HTTPException(
            401,
            "this is an API key; /v1/me needs a user token (mint one with POST /v1/users/{user_id}/tokens)",
            headers=_CHALLENGE,
        )
    if token.count(".") != 2:  # PyJWT would say "Not enough segments"
        raise HTTPException(
            401, "user token is not valid: a user token is a JWT (three parts separated by dots)", headers=_CHALLENGE
        )
    try:
        user_id: str = request.app.state.user_tokens.verify(
            herald.secret_key, token, max_lifetime=herald.settings.user_token_max_seconds
        )
    except BadToken as exc:
        raise HTTPException(401, f"user token is not valid: {exc}", headers=_CHALLENGE) from exc
    if text_problem(user_id) is not None:  # NUL, lone surrogate: no user id has one, no database takes it
        raise HTTPException(401, "user token is not valid: bad subject", headers=_CHALLENGE)
    return user_id


SendKey = Annotated[ApiKey, Depends(require_scope("send"))]
ReadKey = Annotated[ApiKey, Depends(require_scope("read"))]
AdminKey = Annotated[ApiKey, Depends(require_scope("admin"))]
ConversationsKey = Annotated[ApiKey, Depends(require_scope("conversations:read"))]
CurrentUser = Annotated[str, Depends(current_user)]
