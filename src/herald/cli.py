"""``herald serve | api | worker | migrate | apikey | token``."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from herald import __version__
from herald.config import POSTGRESQL_URL_FORM, SQLITE_URL_FORM, Settings, masked_url
from herald.engine.tokens import MAX_EXPIRES_IN

if TYPE_CHECKING:
    from herald.engine.service import Herald

app = typer.Typer(help="Herald, a self-hosted notification platform (消息通知系统).", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
log = logging.getLogger("herald")
T = TypeVar("T")

HostOption = Annotated[str | None, typer.Option(help="Bind address (HERALD_HOST).")]
PortOption = Annotated[int | None, typer.Option(help="Port, 1-65535 (HERALD_PORT).", min=1, max=65535)]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"herald {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    """Herald, a self-hosted notification platform (消息通知系统)."""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:  # a config error is the operator's to fix: one plain line
        typer.echo(f"herald: configuration error: {_config_problems(exc)}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        typer.echo(f"herald: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


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
        typer.echo(
            f"herald: no database at {path.resolve()}: run in the directory that holds it, point "
            "HERALD_DATABASE_URL at it (sqlite+aiosqlite:////absolute/path/herald.db), "
            "or create it with `herald migrate`",
            err=True,
        )
        raise typer.Exit(2)


def _run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a database that cannot be reached ends the command with one line, exit code 1."""
    try:
        return asyncio.run(work)
    except Exception as exc:
        url_form = SQLITE_URL_FORM if settings.is_sqlite else POSTGRESQL_URL_FORM
        reason = _database_failure(exc, fix=f"fix HERALD_DATABASE_URL ({url_form})")
        if reason is None:
            raise  # not the operator's configuration: a bug, keep the traceback
        typer.echo(f"herald: cannot use the database {masked_url(settings.database_url)}: {reason}", err=True)
        raise typer.Exit(1) from None


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
            typer.echo(f"Created the first admin API key (shown once, keep it): {key}", err=True)
        if demo:
            seed = await seed_demo(herald)
            base = f"http://{settings.host}:{settings.port}"
            if seed.seeded:
                typer.echo("Demo seeded: type 'recharge.succeeded', users 'alice' and 'bob'.", err=True)
            else:
                typer.echo(
                    "Demo not seeded: the database already has types or users (it seeds only an empty one).", err=True
                )
            if seed.token:
                typer.echo(f"alice's user token: {seed.token}", err=True)
                typer.echo(f"  curl -H 'Authorization: Bearer {seed.token}' {base}/v1/me/inbox", err=True)
            typer.echo(f"Open {base}/demo to see the inbox widget light up.", err=True)
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


@app.command()
def serve(
    demo: Annotated[
        bool,
        typer.Option(
            help="Into an empty database: seed a demo type, two users and print a user token; serve the /demo page."
        ),
    ] = False,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """API + worker in one process (the embedded default)."""
    settings = _start("serve", sqlite_must_exist=False)
    _bind(settings, host, port)
    _run(settings, _prepare(settings, demo))
    _run_uvicorn(settings, run_worker=settings.embedded_worker, demo=demo)


@app.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """The API alone (run `herald worker` processes beside it)."""
    settings = _start("api")
    _bind(settings, host, port)
    _run(settings, _prepare(settings, demo=False))
    _run_uvicorn(settings, run_worker=False)


def _bind(settings: Settings, host: str | None, port: int | None) -> None:
    if host:
        settings.host = host
    if port is not None:
        settings.port = port


@app.command()
def worker() -> None:
    """A worker alone: claims and sends due deliveries and jobs; serves /healthz and /metrics."""
    from herald.api.worker_ops import bind_socket, run_worker
    from herald.engine.service import Herald

    settings = _start("worker")
    _run(settings, _reach_database(settings))
    sock = None
    if settings.worker_metrics_port:
        host, port = settings.worker_metrics_host, settings.worker_metrics_port
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            typer.echo(f"herald: cannot serve worker metrics on {host}:{port}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None

    async def run() -> None:
        herald = Herald(settings)
        try:
            await run_worker(herald, sock, log_level=settings.log_level)
        finally:
            await herald.close()

    try:
        asyncio.run(run())
    finally:
        if sock is not None:
            sock.close()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (creating a SQLite file if there is none)."""
    settings = _start("migrate", sqlite_must_exist=False)
    _run(settings, _reach_database(settings, migrate=True))
    typer.echo("database is up to date", err=True)


async def _reach_database(settings: Settings, *, migrate: bool | None = None) -> None:
    """Connect once, and migrate when asked (by default: when HERALD_AUTO_MIGRATE, apart)."""
    from sqlalchemy import text

    from herald.engine.service import Herald

    herald = Herald(settings)
    try:
        if migrate:
            await herald.migrate()
        elif migrate is None and settings.auto_migrate:
            await _migrate_apart(herald)
        async with herald.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await herald.close()


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
        raise typer.Exit(child.returncode or 1)
    log.info("database schema brought up to date (herald migrate, in a child process)")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: send,read,admin.")] = "send,read",
) -> None:
    """Create an API key and print it alone on stdout."""
    from herald.core.enums import Scope
    from herald.engine.service import Herald
    from herald.store.apikeys import create_api_key

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    valid = {s.value for s in Scope}
    bad = [s for s in wanted if s not in valid]
    if bad or not wanted:
        typer.echo(f"herald: unknown scope(s) {bad}; choose from {sorted(valid)}", err=True)
        raise typer.Exit(2)
    settings = _start("apikey create")

    async def run() -> str:
        herald = Herald(settings)
        try:
            if settings.auto_migrate:
                await herald.migrate()
            async with herald.db.write() as conn:
                _, plaintext = await create_api_key(conn, name, wanted)
            return plaintext
        finally:
            await herald.close()

    typer.echo(_run(settings, run()))


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys, newest first: id, name, prefix, scopes, created, last used, revoked (never the key)."""
    from herald.engine.service import Herald
    from herald.store.apikeys import list_api_keys

    settings = _start("apikey list")

    async def run() -> list[dict[str, object]]:
        herald = Herald(settings)
        try:
            if settings.auto_migrate:
                await herald.migrate()
            async with herald.db.read() as conn:
                return await list_api_keys(conn)
        finally:
            await herald.close()

    rows = [
        [
            str(key["id"]),
            str(key["name"]),
            f"{key['prefix']}…",
            ",".join(sorted(key["scopes"])),  # type: ignore[call-overload]
            _when(key["created_at"]),
            _when(key["last_used_at"]),
            _when(key["revoked_at"]),
        ]
        for key in _run(settings, run())
    ]
    header = ["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED"]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _when(value: object) -> str:
    from datetime import datetime

    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else "-"


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…), as `herald apikey list` shows.")],
) -> None:
    """Revoke an API key: requests made with it are refused from now on."""
    from herald.engine.service import Herald
    from herald.store.apikeys import revoke_api_key

    settings = _start("apikey revoke")

    async def run() -> bool:
        herald = Herald(settings)
        try:
            if settings.auto_migrate:
                await herald.migrate()
            async with herald.db.write() as conn:
                return await revoke_api_key(conn, key_id)
        finally:
            await herald.close()

    if not _run(settings, run()):
        typer.echo(f"herald: no active API key {key_id!r} (see `herald apikey list`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}", err=True)


@app.command()
def token(
    user_id: Annotated[str, typer.Argument(help="The user id (the business system's own).")],
    expires_in: Annotated[
        int,
        typer.Option(
            help="Lifetime in seconds: 60 to HERALD_USER_TOKEN_MAX_SECONDS (30 days).", min=60, max=MAX_EXPIRES_IN
        ),
    ] = 3600,
) -> None:
    """Print a user token (HS256 JWT) alone on stdout."""
    from herald.engine.tokens import mint_user_token

    settings = _start("token", sqlite_must_exist=False)
    if settings.secret_key is None:  # the key is read from the file beside the SQLite database
        _refuse_missing_sqlite(settings)
    try:
        secret = settings.resolved_secret_key(create=False)
    except FileNotFoundError as exc:
        typer.echo(f"herald: {exc}", err=True)
        raise typer.Exit(2) from exc
    if expires_in > settings.user_token_max_seconds:
        typer.echo(
            f"herald: --expires-in may be at most {settings.user_token_max_seconds} seconds "
            "(HERALD_USER_TOKEN_MAX_SECONDS): the server refuses longer-lived tokens",
            err=True,
        )
        raise typer.Exit(2)
    value, _ = mint_user_token(secret, user_id, expires_in)
    typer.echo(value)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
