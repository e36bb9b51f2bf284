"""The SQLite database, its -wal and -shm, and the generated key file are the owner's alone (0600)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

from herald.app import create_app
from herald.config import Settings

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def start_and_write(db: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", secret_key=None, auto_migrate=True)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        async with app.state.herald.db.write() as conn:
            from herald.store.apikeys import create_api_key

            _, key = await create_api_key(conn, "admin", ["admin"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            r = await client.put("/v1/users/u1", json={"name": "张三"}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code in (200, 201), r.text
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + ".secret")]
        for file in files:
            assert file.exists(), file
            assert mode(file) == 0o600, (file, oct(mode(file)))


async def test_a_new_database_and_its_key_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        await start_and_write(tmp_path / "herald.db")
    finally:
        os.umask(old)


async def test_files_an_older_herald_left_0644_are_made_0600(tmp_path: Path) -> None:
    db = tmp_path / "herald.db"
    await start_and_write(db)
    for suffix in ("", "-wal", "-shm"):
        file = db.with_name(db.name + suffix)
        if file.exists():
            file.chmod(0o644)
    await start_and_write(db)
