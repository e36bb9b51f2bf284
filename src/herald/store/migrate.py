"""Running the Alembic migrations from code (``herald migrate``, auto-migrate at start).

Every start migrates, but a start on a current schema, the usual one, needs no Alembic: importing it
(with Mako and its DDL helpers for every dialect) costs ~10 MiB that the process would then keep,
and ~0.15 s. So ``upgrade`` first compares the database's ``alembic_version`` with the head of the
migration files, read as text, and imports Alembic only when they differ. Any doubt (a file whose
revision cannot be read, several heads, no version table) takes Alembic's path, which is always right.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=]*=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # only when migrating (see the module's docstring)

    cfg = Config()
    cfg.set_main_option("script_location", "herald.store:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def head_revision() -> str | None:
    """The one head of Herald's migration files, or ``None`` when it cannot be told for sure."""
    return read_head(files("herald.store.migrations").joinpath("versions").iterdir())


def read_head(sources: Iterable[Traversable]) -> str | None:
    """The one head of the migration files among ``sources`` (other files are ignored), read as text;
    ``None`` when there is none, several, or a file whose revisions cannot be read."""
    revisions: dict[str, tuple[str, ...]] = {}
    for source in sources:
        if not source.name.endswith(".py") or source.name.startswith("__"):
            continue
        found: dict[str, object] = {}
        for name, value in _ASSIGNMENT.findall(source.read_text(encoding="utf-8")):
            try:
                found.setdefault(name, ast.literal_eval(value))
            except (ValueError, SyntaxError):
                return None
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str) or "down_revision" not in found or revision in revisions:
            return None
        if down is None:
            revisions[revision] = ()
        elif isinstance(down, str):
            revisions[revision] = (down,)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            revisions[revision] = tuple(down)
        else:
            return None
    parents = {parent for downs in revisions.values() for parent in downs}
    heads = [revision for revision in revisions if revision not in parents]
    return heads[0] if len(heads) == 1 else None


def _stamped(sync_conn: Connection) -> set[str] | None:
    """The revisions the database is stamped with, ``None`` when it has no version table."""
    if not inspect(sync_conn).has_table(VERSION_TABLE):
        return None
    return {row[0] for row in sync_conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}  # noqa: S608


async def is_current(engine: AsyncEngine) -> bool:
    """Whether the database is at the head of the migration files (read without Alembic)."""
    head = head_revision()
    if head is None:
        return False
    async with engine.connect() as conn:
        return await conn.run_sync(_stamped) == {head}


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` over an existing engine."""
    if revision == "head" and await is_current(engine):
        return
    from alembic import command  # only when there is something to migrate

    def _upgrade(sync_conn: object) -> None:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    logging.getLogger("alembic").setLevel(logging.WARNING)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
