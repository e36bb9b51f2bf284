from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from herald.config import Settings


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
