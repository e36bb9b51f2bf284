"""The database: SQLite (WAL, busy timeout, one writer) or PostgreSQL (asyncpg).

SQLite allows one writer at a time. Writers in this process queue on an asyncio lock and open
their transaction with ``BEGIN IMMEDIATE``, so a read transaction never has to be upgraded to a
write one (which SQLite answers with SQLITE_BUSY instead of waiting); other processes (the CLI,
a second worker) wait on the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from herald.core.backends import DatabaseBackend, backend_for_url
from herald.core.inputs import load_stored_json
from herald.store.tables import use_dialect


def _owner_only(cursor: Any) -> None:
    """The database holds users' data, key hashes and every secret's ciphertext: the file, its -wal
    and its -shm are the owner's alone (0600). SQLite gives new -wal/-shm files the database file's
    mode, so this runs before WAL mode opens them; existing ones (an older Herald) are fixed too."""
    cursor.execute("PRAGMA database_list")
    for _, name, path in cursor.fetchall():
        if name == "main" and path:
            for file in (path, path + "-wal", path + "-shm"):
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    if stat.S_IMODE(os.stat(file).st_mode) != 0o600:
                        os.chmod(file, 0o600)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is off).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    _owner_only(cursor)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url``; ``ValueError`` for a scheme Herald does not run on (config.py)."""
    # stored JSON is read back repaired (a lone surrogate, absurd nesting): no read can fail on it
    kwargs.setdefault("json_deserializer", load_stored_json)
    # Connections are opened as needed up to pool_size and then kept: with an overflow, every
    # connection beyond the pool was opened for one request and closed after it (on PostgreSQL a
    # backend forked and an SSL handshake tried per request under load: c=32 inbox reads at half the
    # rate of c=8). Beyond pool_size, requests wait for a connection (pool_timeout, then 503).
    database = make_url(url).database or ""
    if database in ("", ":memory:") or "mode=memory" in url:  # one shared connection: no pool to size
        kwargs.pop("pool_size", None)
    else:
        kwargs.setdefault("pool_size", 40)
        kwargs.setdefault("max_overflow", 0)
    if backend_for_url(url) is DatabaseBackend.SQLITE:
        # No rollback when a connection goes back to the pool: every transaction here is begun by
        # SQLAlchemy ("begin" below), which ends it itself when the connection closes, so the pool's
        # extra rollback was a no-op that cost a trip to aiosqlite's thread on every request.
        kwargs.setdefault("pool_reset_on_return", None)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    else:
        engine = create_async_engine(url, **kwargs)
    use_dialect(engine.dialect.name)  # the partial indexes' options for this database (tables.py)
    return engine


class Database:
    """The engine plus the two ways in: ``read()`` and ``write()`` transactions."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.backend = backend_for_url(url)
        self.engine = create_engine(url, **engine_kwargs)
        self.is_sqlite = self.backend is DatabaseBackend.SQLITE
        self.is_postgres = self.backend is DatabaseBackend.POSTGRESQL
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block exits normally."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as raw:
            conn = await raw.execution_options(sqlite_immediate=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL: a write of ONE statement, which is its own transaction (all or nothing)
        without the BEGIN and COMMIT round trips. A block of several statements takes ``write()``."""
        assert self.is_postgres, "SQLite writes take write(): one writer, BEGIN IMMEDIATE"
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Reads. On PostgreSQL in autocommit (no BEGIN/ROLLBACK round trips: each statement sees
        committed data); on SQLite a deferred transaction, one snapshot for the block."""
        async with self.engine.connect() as conn:
            if self.is_postgres:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
