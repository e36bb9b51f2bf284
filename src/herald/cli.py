"""``herald serve | api | worker | migrate | apikey | token``."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from herald.config import Settings
from herald.engine.tokens import MAX_EXPIRES_IN

app = typer.Typer(help="Herald, a self-hosted notification platform (消息通知系统).", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
log = logging.getLogger("herald")


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
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic's start-up chatter (plugin set-up, "context impl") says nothing an operator needs.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


async def _prepare(settings: Settings, demo: bool) -> None:
    from herald.engine.bootstrap import ensure_first_admin_key, seed_demo
    from herald.engine.service import Herald

    herald = Herald(settings)
    try:
        if settings.auto_migrate:
            await herald.migrate()
        key = await ensure_first_admin_key(herald)
        if key:
            typer.echo(f"Created the first admin API key (shown once, keep it): {key}", err=True)
        if demo:
            info = await seed_demo(herald)
            base = f"http://{settings.host}:{settings.port}"
            typer.echo("Demo seeded: type 'recharge.succeeded', users 'alice' and 'bob'.", err=True)
            typer.echo(f"alice's user token: {info['token']}", err=True)
            typer.echo(f"  curl -H 'Authorization: Bearer {info['token']}' {base}/v1/me/inbox", err=True)
    finally:
        await herald.close()


def _run_uvicorn(settings: Settings, run_worker: bool) -> None:
    import uvicorn

    from herald.app import create_app

    uvicorn.run(
        create_app(settings, run_worker=run_worker),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Seed a demo type, two users and print a user token.")] = False,
    host: Annotated[str | None, typer.Option(help="Bind address (HERALD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HERALD_PORT).")] = None,
) -> None:
    """API + worker in one process (the embedded default)."""
    settings = _settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    _logging(settings)
    asyncio.run(_prepare(settings, demo))
    _run_uvicorn(settings, run_worker=settings.embedded_worker)


@app.command()
def api() -> None:
    """The API alone (run `herald worker` processes beside it)."""
    settings = _settings()
    _logging(settings)
    asyncio.run(_prepare(settings, demo=False))
    _run_uvicorn(settings, run_worker=False)


@app.command()
def worker() -> None:
    """A worker alone: claims and sends due deliveries and jobs; serves /healthz and /metrics."""
    from herald.api.worker_ops import bind_socket, run_worker
    from herald.engine.service import Herald

    settings = _settings()
    _logging(settings)
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
            if settings.auto_migrate:
                await herald.migrate()
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
    """Bring the database schema up to date."""
    from herald.engine.service import Herald

    settings = _settings()

    async def run() -> None:
        herald = Herald(settings)
        try:
            await herald.migrate()
        finally:
            await herald.close()

    asyncio.run(run())
    typer.echo("database is up to date", err=True)


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
    settings = _settings()

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

    typer.echo(asyncio.run(run()))


@app.command()
def token(
    user_id: Annotated[str, typer.Argument(help="The user id (the business system's own).")],
    expires_in: Annotated[
        int, typer.Option(help="Lifetime in seconds (60 to 90 days).", min=60, max=MAX_EXPIRES_IN)
    ] = 3600,
) -> None:
    """Print a user token (HS256 JWT) alone on stdout."""
    from herald.engine.tokens import mint_user_token

    settings = _settings()
    try:
        secret = settings.resolved_secret_key(create=False)
    except FileNotFoundError as exc:
        typer.echo(f"herald: {exc}", err=True)
        raise typer.Exit(2) from exc
    value, _ = mint_user_token(secret, user_id, expires_in)
    typer.echo(value)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
