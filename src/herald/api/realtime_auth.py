"""Who opens a realtime stream: a user token from the Authorization header or, on the two stream
paths only, from ``?token=`` (``EventSource`` and the browser's ``WebSocket`` cannot set headers).

Unlike ``auth.current_user`` the stream keeps the token's expiry: a stream outlives the request that
opened it, and is closed with ``token.expired`` when the token runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from herald.api.auth import API_KEY_PREFIX, HeraldDep
from herald.core.inputs import text_problem
from herald.engine.service import Herald
from herald.engine.tokens import BadToken, verify_user_token_expiry

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class StreamUser:
    user_id: str
    expires_at: int
    """The token's ``exp`` (unix seconds)."""


def bearer_or_query(authorization: str | None, query_token: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query_token or None


def verify_stream_token(herald: Herald, token: str | None) -> StreamUser:
    """The token's user and expiry; HTTPException 401 (saying what is wrong) otherwise."""
    if not token:
        raise HTTPException(
            401,
            "a user token is required (Authorization: Bearer <user token>, or ?token= on this stream URL)",
            headers=_CHALLENGE,
        )
    if token.startswith(API_KEY_PREFIX):
        raise HTTPException(
            401,
            "this is an API key; the event streams need a user token (mint one with POST /v1/users/{user_id}/tokens)",
            headers=_CHALLENGE,
        )
    if token.count(".") != 2 or len(token) > MAX_TOKEN_LENGTH:
        raise HTTPException(
            401, "user token is not valid: a user token is a JWT (three parts separated by dots)", headers=_CHALLENGE
        )
    try:
        user_id, expires_at = verify_user_token_expiry(
            herald.secret_key, token, max_lifetime=herald.settings.user_token_max_seconds
        )
    except BadToken as exc:
        raise HTTPException(401, f"user token is not valid: {exc}", headers=_CHALLENGE) from exc
    if text_problem(user_id) is not None:
        raise HTTPException(401, "user token is not valid: bad subject", headers=_CHALLENGE)
    return StreamUser(user_id, expires_at)


async def stream_user(
    request: Request,
    herald: HeraldDep,
    token: Annotated[
        str | None,
        Query(
            max_length=MAX_TOKEN_LENGTH,
            description="The user token, for clients that cannot set the Authorization header (EventSource)."
            " Accepted on the realtime stream URLs only.",
        ),
    ] = None,
) -> StreamUser:
    return verify_stream_token(herald, bearer_or_query(request.headers.get("authorization"), token))


CurrentStreamUser = Annotated[StreamUser, Depends(stream_user)]
