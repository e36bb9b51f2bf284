"""The Typer app behind ``herald``: every command, its options and its help (see ``herald/cli.py``,
which reads ``herald serve`` and ``herald api`` itself and hands everything else to this app)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from herald import __version__, cli
from herald.cli import _migrate_apart, _refuse_missing_sqlite, _run, _start
from herald.commands_admin import admin_app
from herald.config import Settings
from herald.engine.tokens import MAX_EXPIRES_IN

app = typer.Typer(help="Herald, a self-hosted notification platform (消息通知系统).", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(admin_app, name="admin")  # console accounts (commands_admin.py)

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
    cli.serve(demo=demo, host=host, port=port)


@app.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """The API alone (run `herald worker` processes beside it)."""
    cli.api(host=host, port=port)


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


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: send,read,admin,conversations:read (admin does not include the last).")
    ] = "send,read",
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


if __name__ == "__main__":
    app()
