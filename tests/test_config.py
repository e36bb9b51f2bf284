from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from herald.config import DatabaseBackend, Settings, masked_url
from herald.store.db import Database


def test_sqlite_secret_key_is_generated_once_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HERALD_SECRET_KEY", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path}/data/herald.db"
    first = Settings(database_url=url).resolved_secret_key()
    key_file = tmp_path / "data" / "herald.db.secret"
    assert key_file.read_text() == first and len(first) >= 32
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert Settings(database_url=url).resolved_secret_key() == first


def test_secret_key_is_required_off_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERALD_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="HERALD_SECRET_KEY"):
        Settings(database_url="postgresql+asyncpg://u@localhost/db")
    assert Settings(database_url="postgresql+asyncpg://u@localhost/db", secret_key="k").resolved_secret_key() == "k"


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "HERALD_LEASE_SECONDS": "7",
        "HERALD_RETRY_BASE_SECONDS": "3",
        "HERALD_RETRY_MAX_SECONDS": "30",
        "HERALD_MAX_ATTEMPTS": "4",
        "HERALD_REDIS_URL": "redis://127.0.0.1:6379/0",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.lease_seconds, s.retry_base_seconds, s.retry_max_seconds, s.max_attempts) == (7, 3, 30, 4)
    assert s.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite+aiosqlite:///./herald.db", DatabaseBackend.SQLITE),
        ("sqlite+aiosqlite://", DatabaseBackend.SQLITE),
        ("postgresql+asyncpg://u:p@db.internal:5432/herald", DatabaseBackend.POSTGRESQL),
    ],
)
def test_database_backend_is_chosen_by_scheme(url: str, backend: DatabaseBackend) -> None:
    settings = Settings(database_url=url, secret_key="k")
    assert settings.database_backend is backend
    assert settings.is_sqlite is (backend is DatabaseBackend.SQLITE)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql+aiomysql://u:hunter2@db/herald", "'mysql+aiomysql://'"),
        ("postgresql://u:hunter2@db/herald", "'postgresql://'"),  # no driver: would load psycopg2
        ("postgresql+psycopg://u:hunter2@db/herald", "'postgresql+psycopg://'"),
        ("sqlite:///herald.db", "'sqlite://'"),
        ("SQLITE+AIOSQLITE:///herald.db", "'SQLITE+AIOSQLITE://'"),
        ("u:hunter2@db/herald", "no scheme"),
        ("", "no scheme"),
    ],
)
def test_unknown_database_scheme_is_refused(url: str, named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=url, secret_key="k")
    (error,) = caught.value.errors()
    message = str(error["ctx"]["error"])
    assert message.startswith("HERALD_DATABASE_URL: ")
    assert named in message
    assert "sqlite+aiosqlite://, postgresql+asyncpg://" in message
    assert "hunter2" not in message
    with pytest.raises(ValueError, match="HERALD_DATABASE_URL"):
        Database(url)  # the store applies the same rule to a URL given in code


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/1", "unix:///run/redis.sock"])
def test_redis_schemes_accepted(url: str) -> None:
    assert Settings(redis_url=url).redis_url == url


@pytest.mark.parametrize("url", ["memory://", "http://cache:6379", "redis+sentinel://h", "127.0.0.1:6379", "REDIS://h"])
def test_unknown_redis_scheme_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=r"HERALD_REDIS_URL: .*accepted: redis://, rediss://, unix://"):
        Settings(redis_url=url)


def test_empty_redis_url_means_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_REDIS_URL", "")
    assert Settings().redis_url is None


def _herald_command() -> list[str]:
    script = Path(sys.executable).with_name("herald")
    return [str(script)] if script.exists() else [sys.executable, "-m", "herald.cli"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HERALD_DATABASE_URL", "mysql+aiomysql://herald:hunter2@db/herald", "unsupported scheme 'mysql+aiomysql://'"),
        ("HERALD_REDIS_URL", "memcached://hunter2@cache:11211", "unsupported scheme 'memcached://'"),
    ],
)
def test_cli_refuses_an_unknown_scheme_in_one_line(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env[variable] = value
    done = subprocess.run(
        [*_herald_command(), "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"herald: configuration error: {variable}: {expected}; accepted: ")
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was created


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://herald:hunter2@db:5432/herald", "postgresql+asyncpg://herald:***@db:5432/herald"),
        ("postgresql+asyncpg://herald@db/herald", "postgresql+asyncpg://herald@db/herald"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("unix:///run/redis.sock?db=1&password=hunter2", "unix:///run/redis.sock?db=1&password=***"),
        ("sqlite+aiosqlite:///./herald.db", "sqlite+aiosqlite:///./herald.db"),
        ("sqlite+aiosqlite:////var/lib/herald/herald.db", "sqlite+aiosqlite:////var/lib/herald/herald.db"),
    ],
)
def test_masked_url_hides_the_password_only(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_a_port_outside_1_to_65535_is_refused(port: int) -> None:
    with pytest.raises(ValidationError, match="port"):
        Settings(port=port)
    assert Settings(port=65535).port == 65535


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgres://u:hunter2@db/herald", "for PostgreSQL write postgresql+asyncpg://user:password@host:5432/dbname"),
        (
            "postgresql://u:hunter2@db/herald",
            "for PostgreSQL write postgresql+asyncpg://user:password@host:5432/dbname",
        ),
        ("sqlite:///herald.db", "for SQLite write sqlite+aiosqlite:///path/to/herald.db"),
    ],
)
def test_a_near_miss_scheme_names_the_fix(url: str, fix: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=url, secret_key="k")
    message = str(caught.value.errors()[0]["ctx"]["error"])
    assert message.endswith(fix) and "hunter2" not in message
