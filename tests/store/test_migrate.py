"""Migrating at start: a current schema is told without Alembic, anything else goes through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from herald.store.db import create_engine
from herald.store.migrate import alembic_config, head_revision, is_current, read_head, upgrade


def test_the_head_read_as_text_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert head_revision() == script.get_current_head()


def _write(directory: Path, name: str, revision: str, down: str) -> None:
    docstring = f'"""a migration\n\nRevision ID: {revision}\n"""\n\n'
    (directory / name).write_text(f"{docstring}revision: str = {revision!r}\ndown_revision: str | None = {down}\n")


def test_read_head_follows_the_chain(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.py", "0001", "None")
    _write(tmp_path, "0002_b.py", "0002", "'0001'")
    _write(tmp_path, "0003_c.py", "0003", "'0002'")
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "notes.txt").write_text("revision = 'not a migration'")
    assert read_head(tmp_path.iterdir()) == "0003"


ROOT = ("0001_a.py", "0001", "None")


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ([ROOT, ("0002_b.py", "0002", "'0001'"), ("0002_c.py", "0003", "'0001'")], "two heads"),
        ([ROOT, ("0002_b.py", "0002", "'0001'"), ("0002_c.py", "0002", "'0001'")], "one id twice"),
        ([ROOT, ("0002_b.py", "0002", "some_function()")], "not a literal"),
        ([], "no migration"),
    ],
)
def test_read_head_gives_up_when_unsure(tmp_path: Path, files: list[tuple[str, str, str]], why: str) -> None:
    for name, revision, down in files:
        _write(tmp_path, name, revision, down)
    assert read_head(tmp_path.iterdir()) is None, why


def test_a_file_without_a_revision_makes_it_unsure(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.py", "0001", "None")
    (tmp_path / "0002_b.py").write_text("from alembic import op\n")
    assert read_head(tmp_path.iterdir()) is None


async def test_a_current_schema_is_not_migrated_again(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Alembic ran on a current schema")

    monkeypatch.setattr(command, "upgrade", refuse)
    engine = create_engine(database_url)
    try:
        assert await is_current(engine)
        await upgrade(engine)  # the fixture's database is migrated: nothing to do, no Alembic
    finally:
        await engine.dispose()


async def test_a_new_or_older_database_is_brought_to_the_head(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    try:
        assert not await is_current(engine)  # no version table yet
        await upgrade(engine)
        assert await is_current(engine)

        cfg = alembic_config(f"sqlite+aiosqlite:///{tmp_path}/h.db")
        await asyncio.to_thread(command.downgrade, cfg, "-1")
        assert not await is_current(engine)
        await upgrade(engine)
        assert await is_current(engine)
        async with engine.connect() as conn:
            stamped = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert stamped == [head_revision()]
    finally:
        await engine.dispose()


async def test_the_queues_are_vacuumed_after_a_fixed_number_of_changes(database_url: str) -> None:
    """Migration 0008: on PostgreSQL, deliveries and jobs carry their own autovacuum settings (a
    fixed threshold, no scale factor, no cost delay); SQLite has no such thing and is left alone."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name != "postgresql":
                assert await is_current(engine)  # 0008 ran there too, as a no-op
                return
            rows = await conn.execute(
                text("SELECT relname, reloptions FROM pg_class WHERE relname IN ('deliveries', 'jobs')")
            )
            options = {name: dict(o.split("=", 1) for o in opts or []) for name, opts in rows}
    finally:
        await engine.dispose()
    assert set(options) == {"deliveries", "jobs"}
    for table, got in options.items():
        assert got.get("autovacuum_vacuum_scale_factor") == "0", table
        assert got.get("autovacuum_analyze_scale_factor") == "0", table
        assert got.get("autovacuum_vacuum_cost_delay") == "0", table
        assert int(got["autovacuum_vacuum_threshold"]) > 0, table
