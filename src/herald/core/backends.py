"""Which backend a URL names. Backends are chosen by URL scheme (encode/broadcaster's rule): each
scheme names the one async driver Herald ships with, so a URL that would load another driver is
refused at start, with one line naming the setting and the accepted schemes."""

from __future__ import annotations

from enum import StrEnum


class DatabaseBackend(StrEnum):
    """The databases Herald runs on; the values are SQLAlchemy's dialect names."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


DATABASE_SCHEMES = {"sqlite+aiosqlite": DatabaseBackend.SQLITE, "postgresql+asyncpg": DatabaseBackend.POSTGRESQL}
REDIS_SCHEMES = ("redis", "rediss", "unix")  # what redis-py's from_url takes


def url_scheme(url: str) -> str | None:
    scheme, sep, _ = url.partition("://")
    return scheme if sep else None


def refuse_scheme(setting: str, url: str, accepted: tuple[str, ...]) -> ValueError:
    # Only the scheme is quoted: the rest of a URL may carry a password.
    scheme = url_scheme(url)
    found = f"unsupported scheme {scheme[:40] + '://'!r}" if scheme is not None else "no scheme:// in the URL"
    return ValueError(f"{setting}: {found}; accepted: {', '.join(s + '://' for s in accepted)}")


def backend_for_url(url: str) -> DatabaseBackend:
    """The backend ``url`` names, or ``ValueError`` naming the accepted schemes."""
    backend = DATABASE_SCHEMES.get(url_scheme(url) or "")
    if backend is None:
        raise refuse_scheme("HERALD_DATABASE_URL", url, tuple(DATABASE_SCHEMES))
    return backend
