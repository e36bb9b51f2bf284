"""Running the Alembic migrations from code (``herald migrate``, auto-migrate at start)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "herald.store:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` over an existing engine."""

    def _upgrade(sync_conn: object) -> None:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    logging.getLogger("alembic").setLevel(logging.WARNING)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
