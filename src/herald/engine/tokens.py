"""User tokens: HS256 JWTs with ``sub`` (the user id) and ``exp``, signed with HERALD_SECRET_KEY.

Business backends may mint them themselves with the same secret. Only HS256 is accepted, so
``alg: none`` and algorithm-confusion tokens are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
MAX_EXPIRES_IN = 90 * 24 * 3600


class BadToken(Exception):
    pass


def mint_user_token(secret: str, user_id: str, expires_in: int = 3600) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires_at = (now + timedelta(seconds=expires_in)).replace(microsecond=0)
    token = jwt.encode(
        {"sub": user_id, "iat": int(now.timestamp()), "exp": int(expires_at.timestamp())}, secret, algorithm=ALGORITHM
    )
    return token, expires_at


def verify_user_token(secret: str, token: str) -> str:
    """The user id the token was issued to; BadToken if forged, expired or malformed."""
    return verify_user_token_expiry(secret, token)[0]


def verify_user_token_expiry(secret: str, token: str) -> tuple[str, int]:
    """The user id and the token's ``exp`` (unix seconds); BadToken if forged, expired or malformed."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as exc:
        raise BadToken(str(exc)) from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise BadToken("token has no subject")
    return sub, int(claims["exp"])
