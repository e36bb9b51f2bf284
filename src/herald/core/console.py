"""The admin console's pure decisions: roles, what a username and a password may be, when a session
has expired, how long a throttled login waits, and what an audit entry may record.

No I/O: store/console.py keeps the rows, web/console/ serves the pages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from herald.core.inputs import text_problem

USERNAME_MAX_CHARS = 64
PASSWORD_MIN_CHARS = 8
# argon2 hashes any length, but a megabyte of password is a cheap way to make a server work hard
PASSWORD_MAX_CHARS = 1024


class Role(StrEnum):
    """What a console account may do. Each role includes the ones before it."""

    VIEWER = "viewer"  # reads every page, changes nothing
    OPERATOR = "operator"  # also sends and edits content (types, templates, announcements)
    ADMIN = "admin"  # also console accounts, API keys, channel accounts and the audit log

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
ROLE_NAMES = tuple(role.value for role in Role)


def normalized_username(value: str) -> str:
    """The form a username is stored and looked up in (NFC: the same letters typed on two
    keyboards are one name)."""
    return unicodedata.normalize("NFC", value.strip())


def username_problem(value: str) -> str | None:
    """Why ``value`` (normalized) cannot be a username, or None. Any printable text is allowed:
    the console escapes it wherever it shows it."""
    if not value:
        return "must not be empty"
    if len(value) > USERNAME_MAX_CHARS:
        return f"must be at most {USERNAME_MAX_CHARS} characters"
    problem = text_problem(value)
    if problem is not None:
        return problem
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        return "must not contain control or invisible formatting characters"
    return None


def password_problem(value: str) -> str | None:
    if len(value) < PASSWORD_MIN_CHARS:
        return f"must be at least {PASSWORD_MIN_CHARS} characters"
    if len(value) > PASSWORD_MAX_CHARS:
        return f"must be at most {PASSWORD_MAX_CHARS} characters"
    return text_problem(value)


def session_expiry(
    created_at: datetime, last_seen_at: datetime, now: datetime, *, idle: timedelta, absolute: timedelta
) -> str | None:
    """``"idle"`` or ``"absolute"`` when a session has expired, else None."""
    if now - created_at >= absolute:
        return "absolute"
    if now - last_seen_at >= idle:
        return "idle"
    return None


def throttle_wait(failures: Iterable[datetime], now: datetime, *, limit: int, window: timedelta) -> float:
    """Seconds until one more login may be tried against a key that failed at ``failures`` (those
    within ``window`` count): 0 while fewer than ``limit`` failed in the window, else until enough of
    the oldest have left it."""
    recent = sorted((at for at in failures if now - at < window), reverse=True)
    if len(recent) < limit:
        return 0.0
    # the limit-th most recent failure must leave the window before one more try
    return max(0.0, (recent[limit - 1] + window - now).total_seconds())


_SECRET_WORDS = ("password", "secret", "token", "credential", "api_key", "apikey")
REDACTED = "[redacted]"


def redacted(details: Mapping[str, Any]) -> dict[str, Any]:
    """``details`` fit for the audit log: the value of any key that names a secret is replaced,
    at any depth. A safety net only: callers pass no secrets in the first place."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                str(k): REDACTED if any(w in str(k).lower() for w in _SECRET_WORDS) else clean(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    result: dict[str, Any] = clean(details)
    return result
