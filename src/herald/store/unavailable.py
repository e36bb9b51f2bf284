"""Telling "the database is not there right now" from every other database error.

An unreachable server, a dropped connection, an exhausted pool, a locked or unopenable SQLite file:
the request may succeed if retried in a moment (503). A missing table, a bad statement or a violated
constraint will not (500, or the caller's own 4xx).
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import exc as sa

# SQLite says so in the message only (sqlite3.OperationalError covers "no such table" too)
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
)
# asyncpg's exception classes, by name: whether they reach us wrapped by SQLAlchemy or raw
_ASYNCPG_UNAVAILABLE = {
    "PostgresConnectionError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "ConnectionRejectionError",
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "ClientCannotConnectError",
    "SqlclientUnableToEstablishSqlconnectionError",
    "AdminShutdownError",
    "CrashShutdownError",
    "ServerShutdownError",
}
_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3")


def _raised_in_driver(tb: TracebackType | None) -> bool:
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] in _DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


def _asyncpg_unavailable(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    module = type(error).__module__
    return module.startswith("asyncpg") and bool(names & _ASYNCPG_UNAVAILABLE)


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached or used for now (answer 503, retry)."""
    if isinstance(error, sa.TimeoutError):  # no pool connection free within pool_timeout
        return True
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return True
        orig = error.orig
        message = str(orig).lower()
        if any(text in message for text in _SQLITE_UNAVAILABLE):
            return True
        cause = orig.__cause__ if orig is not None else None
        if orig is not None and (_asyncpg_unavailable(orig) or (cause is not None and _asyncpg_unavailable(cause))):
            return True
        return isinstance(orig, OSError)
    if _asyncpg_unavailable(error):
        return True
    # connect() failing (refused, reset, unknown host, timed out) surfaces as a bare OSError
    return isinstance(error, OSError) and _raised_in_driver(error.__traceback__)
