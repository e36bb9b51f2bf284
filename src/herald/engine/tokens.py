"""User tokens: HS256 JWTs with ``sub`` (the user id) and ``exp``, signed with HERALD_SECRET_KEY.

Business backends may mint them themselves with the same secret. Only HS256 is accepted, so
``alg: none`` and algorithm-confusion tokens are refused.

PyJWT is imported on the first token minted or checked: it loads cryptography (~9 MiB with it),
which a server only using API keys never needs, and the CLI reads ``MAX_EXPIRES_IN`` from here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

ALGORITHM = "HS256"
MAX_EXPIRES_IN = 90 * 24 * 3600
"""The ceiling of ``HERALD_USER_TOKEN_MAX_SECONDS``."""
CLOCK_SKEW_SECONDS = 60
"""A token minted elsewhere (a business backend) with the longest lifetime may come from a clock
this far ahead."""


class BadToken(Exception):
    pass


def mint_user_token(secret: str, user_id: str, expires_in: int = 3600) -> tuple[str, datetime]:
    import jwt  # on first use (see the module's docstring)

    now = datetime.now(UTC)
    expires_at = (now + timedelta(seconds=expires_in)).replace(microsecond=0)
    token = jwt.encode(
        {"sub": user_id, "iat": int(now.timestamp()), "exp": int(expires_at.timestamp())}, secret, algorithm=ALGORITHM
    )
    return token, expires_at


def verify_user_token(secret: str, token: str, *, max_lifetime: int | None = None) -> str:
    """The user id the token was issued to; BadToken if forged, expired, malformed or (with
    ``max_lifetime``) valid for longer than that from now."""
    return verify_user_token_expiry(secret, token, max_lifetime=max_lifetime)[0]


def verify_user_token_expiry(secret: str, token: str, *, max_lifetime: int | None = None) -> tuple[str, int]:
    """The user id and the token's ``exp`` (unix seconds); BadToken if forged, expired or malformed,
    or when ``exp`` lies more than ``max_lifetime`` seconds ahead (HERALD_USER_TOKEN_MAX_SECONDS):
    a leaked token signed for years must not work for years."""
    import jwt  # on first use (see the module's docstring)

    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as exc:
        raise BadToken(str(exc)) from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise BadToken("token has no subject")
    expires = int(claims["exp"])
    if max_lifetime is not None and expires > time.time() + max_lifetime + CLOCK_SKEW_SECONDS:
        raise BadToken(f"token lives longer than the {max_lifetime} seconds allowed (HERALD_USER_TOKEN_MAX_SECONDS)")
    return sub, expires
