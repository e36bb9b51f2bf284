"""``herald serve | api | worker | migrate | apikey | token``.

The commands are a Typer app (``herald/commands.py``). ``herald serve`` and ``herald api`` with
nothing but their own options are read here, without importing Typer: a server keeps what it
imported to start for as long as it runs, and Typer with its own Click costs ~1.3 MiB and ~20 ms that
serving never uses. Anything else (another command, ``--help``, ``--version``, an option or a value
this reading does not take as it is) goes to Typer, which runs it or says what is wrong as ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from herald.config import POSTGRESQL_URL_FORM, SQLITE_URL_FORM, Settings, masked_url

if TYPE_CHECKING:
    from herald.engine.service import Herald

log = logging.getLogger("herald")
T = TypeVar("T")


def echo(message: str = "", *, err: bool = False) -> None:
    """One line to stdout, or stderr with ``err`` (what ``typer.echo`` does with text)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{message}\n")
    stream.flush()


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:  # a config error is the operator's to fix: one plain line
        echo(f"herald: configuration error: {_config_problems(exc)}", err=True)
        raise SystemExit(2) from None
    except Exception as exc:
        echo(f"herald: configuration error: {exc}", err=True)
        raise SystemExit(2) from None


def _config_problems(exc: ValidationError) -> str:
    """Each problem as ``HERALD_NAME: message``, never the value (a URL may carry a password)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        message = str(error.get("ctx", {}).get("error") or error["msg"])
        setting = "HERALD_" + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(message if message.startswith("HERALD_") or not error["loc"] else f"{setting}: {message}")
    return "; ".join(problems)


def _logging(settings: Settings) -> None:
    from herald.logs import install_redaction

    install_redaction()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic's start-up chatter (plugin set-up, "context impl") says nothing an operator needs.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def _start(command: str, *, sqlite_must_exist: bool = True) -> Settings:
    """Settings and logging for ``command``, and one log line naming the database and Redis it uses.

    Only ``serve`` and ``migrate`` may create a SQLite file: any other command run in the wrong
    directory would quietly start a new, empty installation.
    """
    settings = _settings()
    _logging(settings)
    redis = masked_url(settings.redis_url) if settings.redis_url else "none (in-process)"
    log.info("%s: database %s, redis %s", command, masked_url(settings.database_url), redis)
    if sqlite_must_exist:
        _refuse_missing_sqlite(settings)
    return settings


def _refuse_missing_sqlite(settings: Settings) -> None:
    path = settings.sqlite_path
    if path is not None and not path.exists():
        echo(
            f"herald: no database at {path.resolve()}: run in the directory that holds it, point "
            "HERALD_DATABASE_URL at it (sqlite+aiosqlite:////absolute/path/herald.db), "
            "or create it with `herald migrate`",
            err=True,
        )
        raise SystemExit(2)


def _run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a database that cannot be reached ends the command with one line, exit code 1."""
    try:
        return asyncio.run(work)
    except Exception as exc:
        url_form = SQLITE_URL_FORM if settings.is_sqlite else POSTGRESQL_URL_FORM
        reason = _database_failure(exc, fix=f"fix HERALD_DATABASE_URL ({url_form})")
        if reason is None:
            raise  # not the operator's configuration: a bug, keep the traceback
        echo(f"herald: cannot use the database {masked_url(settings.database_url)}: {reason}", err=True)
        raise SystemExit(1) from None


def _database_failure(exc: BaseException, fix: str) -> str | None:
    """Why the database could not be reached, with the fix, or ``None`` when ``exc`` is something else."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:  # SQLAlchemy wraps the driver's error; the driver's own is the one that says why
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        reason = _connection_reason(error, fix)
        if reason is not None:
            return reason
        todo.extend(e for e in (getattr(error, "orig", None), error.__cause__, error.__context__) if e is not None)
    return None


def _connection_reason(error: BaseException, fix: str) -> str | None:
    import asyncpg  # type: ignore[import-untyped]

    if isinstance(error, asyncpg.InvalidCatalogNameError):  # database "x" does not exist
        return f"{error}; create it (createdb) or {fix}"
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
        return f"{error}; {fix}"
    no_table = isinstance(error, sqlite3.OperationalError) and str(error).startswith("no such table")
    if no_table or isinstance(error, asyncpg.UndefinedTableError):  # HERALD_AUTO_MIGRATE=false on a new database
        return f"{error}; run `herald migrate` first (or set HERALD_AUTO_MIGRATE=true)"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused; start PostgreSQL there or {fix}"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror}); {fix}"
    if isinstance(error, TimeoutError):
        return f"connection timed out; {fix}"
    if isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error):
        return f"{error}; check that the directory exists and is writable, or {fix}"
    if isinstance(error, OSError) and error.errno is not None:  # network unreachable, …
        return f"{error.strerror or error}; {fix}"
    return None


async def _prepare(settings: Settings, demo: bool) -> None:
    from herald.engine.bootstrap import ensure_first_admin_key, seed_demo
    from herald.engine.service import Herald

    herald = Herald(settings)
    try:
        if settings.auto_migrate:
            await _migrate_apart(herald)
        key = await ensure_first_admin_key(herald)
        if key:
            echo(f"Created the first admin API key (shown once, keep it): {key}", err=True)
        if demo:
            seed = await seed_demo(herald)
            base = f"http://{settings.host}:{settings.port}"
            if seed.seeded:
                echo("Demo seeded: type 'recharge.succeeded', users 'alice' and 'bob'.", err=True)
            else:
                echo("Demo not seeded: the database already has types or users (it seeds only an empty one).", err=True)
            if seed.token:
                echo(f"alice's user token: {seed.token}", err=True)
                echo(f"  curl -H 'Authorization: Bearer {seed.token}' {base}/v1/me/inbox", err=True)
            echo(f"Open {base}/demo to see the inbox widget light up.", err=True)
            from herald.web.demo import DEMO_ADMIN, ensure_demo_admin

            password = await ensure_demo_admin(herald)
            if password:
                echo(f"Console: {base}/console, user {DEMO_ADMIN!r}, password (shown once): {password}", err=True)
            else:
                echo(f"Console: {base}/console (console accounts exist already: log in with one)", err=True)
    finally:
        await herald.close()


def _run_uvicorn(settings: Settings, run_worker: bool, demo: bool = False) -> None:
    import uvicorn

    from herald.app import create_app

    uvicorn.run(
        create_app(settings, run_worker=run_worker, demo=demo),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def _bind(settings: Settings, host: str | None, port: int | None) -> None:
    if host:
        settings.host = host
    if port is not None:
        settings.port = port


async def _migrate_apart(herald: Herald) -> None:
    """HERALD_AUTO_MIGRATE for a command that keeps running (serve, api, worker): when the schema is
    behind, ``herald migrate`` brings it up to date in a child process.

    A process that imported Alembic would keep it (~10 MiB) for as long as it runs, and a server
    migrates exactly when it starts a new version or a new installation: in-process, every upgraded
    server would carry it for good. A current schema is told without Alembic (store/migrate.py), so
    the usual start spawns nothing. The child reads the same settings (the environment).
    """
    import os

    from herald.store.migrate import is_current

    if await is_current(herald.db.engine):
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "herald.cli",
        "migrate",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, err = await child.communicate()
    if child.returncode != 0:  # it said why, in the CLI's own words: pass that on and stop there
        sys.stderr.write(err.decode(errors="replace"))
        sys.stdout.write(out.decode(errors="replace"))
        raise SystemExit(child.returncode or 1)
    log.info("database schema brought up to date (herald migrate, in a child process)")


def serve(*, demo: bool = False, host: str | None = None, port: int | None = None) -> None:
    """``herald serve``: API + worker in one process (the embedded default)."""
    settings = _start("serve", sqlite_must_exist=False)
    _bind(settings, host, port)
    _run(settings, _prepare(settings, demo))
    _run_uvicorn(settings, run_worker=settings.embedded_worker, demo=demo)


def api(*, host: str | None = None, port: int | None = None) -> None:
    """``herald api``: the API alone (run ``herald worker`` processes beside it)."""
    settings = _start("api")
    _bind(settings, host, port)
    _run(settings, _prepare(settings, demo=False))
    _run_uvicorn(settings, run_worker=False)


_SERVER_OPTIONS = {"serve": ("--demo", "--no-demo", "--host", "--port"), "api": ("--host", "--port")}


def server_args(argv: list[str]) -> tuple[str, dict[str, Any]] | None:
    """``serve`` or ``api`` and its options, when ``argv`` is that and nothing else, each option at
    most once and each value plainly valid (a host not starting with ``-``, a port of digits in
    1-65535); ``None`` for anything else, which Typer reads."""
    if not argv or argv[0] not in _SERVER_OPTIONS:
        return None
    allowed = _SERVER_OPTIONS[argv[0]]
    options: dict[str, Any] = {}
    rest = iter(argv[1:])
    for arg in rest:
        name, eq, value = arg.partition("=")
        if name not in allowed:
            return None
        parsed: bool | int | str
        if name in ("--demo", "--no-demo"):
            key, parsed = "demo", name == "--demo"
            if eq:
                return None
        else:
            key = name.removeprefix("--")
            if not eq:
                value = next(rest, "")
            if not value or value.startswith("-"):
                return None
            parsed = value
            if key == "port":
                if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
                    return None
                parsed = int(value)
        if key in options:
            return None
        options[key] = parsed
    return argv[0], options


def main() -> None:
    server = None if "_HERALD_COMPLETE" in os.environ else server_args(sys.argv[1:])  # shell completion: Typer's
    if server is None:
        from herald.commands import app

        app()
        return
    command, options = server
    try:
        (serve if command == "serve" else api)(**options)
    except KeyboardInterrupt:  # before serving (uvicorn handles its own): as Typer says it
        echo("\nAborted!", err=True)
        raise SystemExit(1) from None


def __getattr__(name: str) -> Any:
    """``herald.cli.app`` (the Typer app, ``herald/commands.py``), imported when first asked for."""
    if name in ("app", "apikey_app"):
        from herald import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
