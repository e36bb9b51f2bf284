"""The migrations create exactly the schema in tables.py, on every backend, and downgrade cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command

from herald.store.migrate import alembic_config


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    command.check(alembic_config(database_url))  # raises if autogenerate would find a difference


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    cfg = alembic_config(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    command.check(cfg)
