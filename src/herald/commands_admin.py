"""``herald admin create | list | set-password | disable | enable``: console accounts (docs/console.md).

Passwords come from ``HERALD_ADMIN_PASSWORD`` when it is set (scripts, containers), else from a
prompt that asks twice and shows nothing typed. Each change is written to the console's audit log
as made by ``cli``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from herald.cli import _run, _start
from herald.core.console import ROLE_NAMES, Role, normalized_username, password_problem, username_problem

PASSWORD_ENV = "HERALD_ADMIN_PASSWORD"  # noqa: S105 (the variable's name, not a password)

admin_app = typer.Typer(help="Manage console accounts (the web console at /console).", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"herald: {message}", err=True)
    return typer.Exit(code)


def _username(name: str) -> str:
    username = normalized_username(name)
    problem = username_problem(username)
    if problem is not None:
        raise _fail(f"the username {problem}", 2)
    return username


def _password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        source = PASSWORD_ENV if PASSWORD_ENV in os.environ else "the password"
        raise _fail(f"{source} {problem}", 2)
    return password


@admin_app.command("create")
def admin_create(
    name: Annotated[str, typer.Argument(help="The username to log in with.")],
    role: Annotated[str, typer.Option(help="viewer (reads), operator (sends, edits content) or admin (everything).")],
) -> None:
    """Create a console account (password from HERALD_ADMIN_PASSWORD, else asked twice)."""
    from herald.core.errors import Conflict
    from herald.core.passwords import hash_password
    from herald.engine.service import Herald
    from herald.store import console as console_store

    if role not in ROLE_NAMES:
        raise _fail(f"unknown role {role!r}; choose from {', '.join(ROLE_NAMES)}", 2)
    username = _username(name)
    password = _password()
    settings = _start("admin create")

    async def run() -> bool:
        herald = Herald(settings)
        try:
            if settings.auto_migrate:
                await herald.migrate()
            encoded = hash_password(password)
            async with herald.db.write() as conn:
                try:
                    account = await console_store.create_account(conn, username, Role(role), encoded)
                except Conflict:
                    return False
                await console_store.audit(
                    conn, console_store.CLI_ACTOR, "account.create", username, {"role": role, "id": account.id}
                )
            return True
        finally:
            await herald.close()

    if not _run(settings, run()):
        raise _fail(f"a console account named {username!r} exists already (see `herald admin list`)")
    typer.echo(f"created console account {username!r} ({role})", err=True)


@admin_app.command("list")
def admin_list() -> None:
    """List console accounts: username, role, created, last login, disabled (never a password)."""
    from herald.engine.service import Herald
    from herald.store import console as console_store
    from herald.store.console import ConsoleAccount

    settings = _start("admin list")

    async def run() -> list[ConsoleAccount]:
        herald = Herald(settings)
        try:
            if settings.auto_migrate:
                await herald.migrate()
            async with herald.db.read() as conn:
                return await console_store.list_accounts(conn)
        finally:
            await herald.close()

    from herald.commands import _when

    rows = [
        [a.username, a.role.value, _when(a.created_at), _when(a.last_login_at), "yes" if a.disabled else "no"]
        for a in _run(settings, run())
    ]
    header = ["USERNAME", "ROLE", "CREATED", "LAST_LOGIN", "DISABLED"]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _change(command: str, name: str, action: str, password: str | None = None, disabled: bool | None = None) -> None:
    """Set the password or the disabled flag of the account ``name``, audited as ``action``."""
    from herald.core.passwords import hash_password
    from herald.engine.service import Herald
    from herald.store import console as console_store

    username = _username(name)
    settings = _start(command)

    async def run() -> bool:
        herald = Herald(settings)
        try:
            if settings.auto_migrate:
                await herald.migrate()
            encoded = hash_password(password) if password is not None else None
            async with herald.db.write() as conn:
                account = await console_store.find_account(conn, username)
                if account is None:
                    return False
                if encoded is not None:
                    await console_store.set_password_hash(conn, account.id, encoded)
                if disabled is not None:
                    await console_store.set_disabled(conn, account.id, disabled)
                await console_store.audit(conn, console_store.CLI_ACTOR, action, username, {"id": account.id})
            return True
        finally:
            await herald.close()

    if not _run(settings, run()):
        raise _fail(f"no console account named {username!r} (see `herald admin list`)")


@admin_app.command("set-password")
def admin_set_password(name: Annotated[str, typer.Argument(help="The account's username.")]) -> None:
    """Set a new password (from HERALD_ADMIN_PASSWORD, else asked twice); the account's sessions end."""
    _change("admin set-password", name, "account.password", password=_password())
    typer.echo(f"password set for {normalized_username(name)!r}; its sessions have ended", err=True)


@admin_app.command("disable")
def admin_disable(name: Annotated[str, typer.Argument(help="The account's username.")]) -> None:
    """Disable an account: it can no longer log in, and its sessions end at once."""
    _change("admin disable", name, "account.disable", disabled=True)
    typer.echo(f"disabled {normalized_username(name)!r}", err=True)


@admin_app.command("enable")
def admin_enable(name: Annotated[str, typer.Argument(help="The account's username.")]) -> None:
    """Enable a disabled account again."""
    _change("admin enable", name, "account.enable", disabled=False)
    typer.echo(f"enabled {normalized_username(name)!r}", err=True)
