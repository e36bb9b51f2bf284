"""Statements run on the driver's own connection, under SQLAlchemy's pool and transaction.

For the few hottest reads only (the inbox feed and its counts): SQLAlchemy's execution path (compiled
cache lookup, parameter processing, result processing) cost more than the indexed query itself. The
statement text is fixed per combination of filters, so asyncpg prepares it once per connection and
SQLite's statement cache keeps it. Errors come back as SQLAlchemy's ``DBAPIError`` like any other, so
an outage is still a 503 (``store.unavailable``), and a connection that died is invalidated in the pool.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exc as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.unavailable import database_unavailable


async def fetch(conn: AsyncConnection, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
    """Rows of ``sql`` (``$1`` placeholders on PostgreSQL, ``?`` on SQLite) as tuples."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        if conn.dialect.name == "postgresql":
            return list(await driver.fetch(sql, *args))
        async with driver.execute(sql, tuple(args)) as cursor:
            return list(await cursor.fetchall())
    except Exception as error:
        wrapped = sa.DBAPIError(sql, None, error, connection_invalidated=False)
        if database_unavailable(wrapped):
            await conn.invalidate()
            wrapped = sa.DBAPIError(sql, None, error, connection_invalidated=True)
        raise wrapped from error


def sqlite_time(moment: datetime) -> str:
    """A UTC instant as ``UTCDateTime`` stores it on SQLite (naive, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def read_time(value: Any) -> datetime | None:
    """A time column as ``UTCDateTime`` reads it: asyncpg's aware datetime as is, SQLite's text parsed."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def any_of(postgres: bool, param: str) -> str:
    """``<column> {any_of(...)}``: membership in a list of texts bound as one parameter (``text_list``),
    so the statement text is the same whatever the list's length."""
    if postgres:
        return f"= ANY(CAST({param} AS text[]))"
    return f"IN (SELECT value FROM json_each({param}))"  # noqa: S608 (a parameter's name, not a value)


def text_list(postgres: bool, values: Sequence[str]) -> Any:
    """The parameter for ``any_of``: an array for asyncpg, JSON text for SQLite."""
    return list(values) if postgres else json.dumps(list(values))
