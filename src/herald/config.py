"""One Settings object, read from HERALD_* environment variables."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from herald.core.backends import REDIS_SCHEMES, DatabaseBackend, backend_for_url, refuse_scheme, url_scheme
from herald.core.quiet_hours import is_timezone

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./herald.db"
POSTGRESQL_URL_FORM = "postgresql+asyncpg://user:password@host:5432/dbname"
SQLITE_URL_FORM = "sqlite+aiosqlite:///path/to/herald.db"


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: fit for a log line."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unparseable: show the scheme alone
        scheme, sep, _ = url.partition("://")
        return f"{scheme}://…" if sep else "…"
    if parts.query:  # redis-py takes ?password=… too (unix:// sockets)
        query = "&".join(
            f"{name}=***" if name.lower() == "password" else f"{name}{sep}{value}"
            for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
        )
        parts = parts._replace(query=query)
    if password:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    # by hand: urlunsplit drops the empty authority of sqlite:/// and unix:/// URLs
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{query}{fragment}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str | None = Field(default=None, repr=False)
    redis_url: str | None = None
    database_pool_size: int = Field(default=40, ge=1, le=1000)
    """Database connections one process keeps at most, opened as needed and kept open (no overflow:
    a connection opened beyond the pool and closed on return made PostgreSQL fork a backend per request)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"

    lease_seconds: float = Field(default=60, gt=0)
    retry_base_seconds: float = Field(default=2, ge=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    max_attempts: int = Field(default=8, ge=1)

    worker_batch_size: int = Field(default=100, ge=1, le=10_000)
    worker_concurrency: int = Field(default=32, ge=1)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    pg_notify: bool = True
    """PostgreSQL: workers wake by LISTEN/NOTIFY when work is added (polling stays as the fallback)."""
    # `herald worker`'s own /metrics and /healthz; port 0 serves nothing
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    fanout_chunk_size: int = Field(default=10_000, ge=100, le=100_000)
    inline_fanout_limit: int = Field(default=1000, ge=1)

    default_locale: str = "zh-CN"
    default_timezone: str = "UTC"
    """The IANA timezone of a user's quiet hours when neither they nor their profile name one."""
    public_url: str | None = None
    """Where Herald is reachable from the internet (``https://notify.example.com``): links in
    messages point there (the one-click unsubscribe link of emails). Unset: no such links."""
    allow_private_urls: bool = False
    user_token_max_seconds: int = Field(default=30 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    """The longest a user token may live: a correctly signed token whose ``exp`` lies further ahead
    is refused, and no token is minted for longer (the API's ``expires_in``, ``herald token``)."""
    auto_migrate: bool = True
    embedded_worker: bool = True

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins whose pages may call the API (the inbox widget on the business site): comma-separated
    or a JSON list; ``*`` for any. Credentials are never allowed across origins (bearer tokens only)."""
    realtime_heartbeat_seconds: float = Field(default=15, ge=1, le=300)
    realtime_max_streams_per_user: int = Field(default=20, ge=1, le=1000)
    # Retention (docs/operations.md): what the worker's background purge deletes; 0 keeps forever.
    retention_inbox_days: int = Field(default=180, ge=0, le=36_500)
    """In-app inbox items created longer ago than this are purged, read or not."""
    retention_deliveries_days: int = Field(default=90, ge=0, le=36_500)
    """Deliveries that ended (sent, failed, skipped, …) longer ago than this are purged with their
    attempts; so are finished background jobs, and notifications older than this with no delivery left."""
    retention_idempotency_hours: int = Field(default=24, ge=0, le=876_000)
    """Idempotency-Key records are purged this long after they were taken: at least 24, the replay
    window the API promises."""
    retention_batch_size: int = Field(default=1000, ge=1, le=10_000)
    """Rows deleted per transaction by the purge (each batch is its own short transaction)."""
    direct_messages: bool = True
    """Users may write to each other (个人私信, docs/direct-messages.md); off: /v1/me/messages,
    /v1/me/conversations… and /v1/me/blocks… answer 404."""
    direct_message_max_chars: int = Field(default=4000, ge=1, le=100_000)
    """The longest body of a direct message, in characters (Unicode code points)."""
    # The admin console (docs/console.md)
    console_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    """A console session unused for this long has expired: its owner logs in again."""
    console_session_max_hours: int = Field(default=12, ge=1, le=30 * 24)
    """A console session ends this long after its login, however busy."""
    console_login_max_failures: int = Field(default=5, ge=1, le=1000)
    """Failed console logins for one username within the lockout window, after which that username
    must wait (429) until the oldest of them leaves the window."""
    console_login_max_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    """The same for one client address, whatever usernames it tries."""
    console_login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    """The window the failed logins are counted in."""

    @field_validator("database_url")
    @classmethod
    def _known_database_scheme(cls, value: str) -> str:
        try:
            backend_for_url(value)
        except ValueError as exc:  # name the fix for the usual near misses (postgres://, postgresql://)
            scheme = (url_scheme(value) or "").lower()
            if scheme.startswith("postgres"):
                raise ValueError(f"{exc}; for PostgreSQL write {POSTGRESQL_URL_FORM}") from None
            if scheme.startswith("sqlite"):
                raise ValueError(f"{exc}; for SQLite write {SQLITE_URL_FORM}") from None
            raise
        return value

    @field_validator("retention_idempotency_hours")
    @classmethod
    def _within_replay_window(cls, value: int) -> int:
        if 0 < value < 24:
            raise ValueError("must be 0 (keep) or at least 24: a key is replayed for 24 hours")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not is_timezone(value):
            raise ValueError(
                f"HERALD_DEFAULT_TIMEZONE: {value[:64]!r} is not an IANA timezone name (e.g. Asia/Shanghai)"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                f"HERALD_PUBLIC_URL: {value[:80]!r} is not a base URL; write scheme://host[:port][/path],"
                " e.g. https://notify.example.com"
            )
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _known_redis_scheme(cls, value: str | None) -> str | None:
        if not value:  # unset or empty: in-process
            return None
        if url_scheme(value) not in REDIS_SCHEMES:
            raise refuse_scheme("HERALD_REDIS_URL", value, REDIS_SCHEMES)
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
                raise ValueError(
                    f"HERALD_CORS_ORIGINS: {origin[:80]!r} is not an origin; write scheme://host[:port],"
                    " e.g. https://shop.example.com (no path), or *"
                )
        return [o.rstrip("/") for o in value]

    @model_validator(mode="after")
    def _secret_key_present(self) -> Settings:
        if self.secret_key is None and not self.is_sqlite:
            raise ValueError("HERALD_SECRET_KEY is required when the database is not SQLite")
        return self

    @property
    def database_backend(self) -> DatabaseBackend:
        return backend_for_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_backend is DatabaseBackend.SQLITE

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        if not path or path.startswith(":memory:"):
            return None
        return Path(path)

    def resolved_secret_key(self, *, create: bool = True) -> str:
        """The secret key; on SQLite without one, generated once and kept beside the database.

        ``create=False`` refuses to make a new one (a CLI run in the wrong directory would
        otherwise mint tokens the server rejects).
        """
        if self.secret_key:
            return self.secret_key
        db_path = self.sqlite_path
        if db_path is None:
            # An in-memory database lives only as long as the process; so may its key.
            self.secret_key = secrets.token_urlsafe(32)
            return self.secret_key
        key_file = db_path.with_name(db_path.name + ".secret")
        if key_file.exists():
            self.secret_key = key_file.read_text().strip()
        elif not create:
            raise FileNotFoundError(f"no secret key at {key_file}: run where the database is, or set HERALD_SECRET_KEY")
        else:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(32)
            key_file.touch(mode=0o600)
            key_file.write_text(key)
            self.secret_key = key
        return self.secret_key
