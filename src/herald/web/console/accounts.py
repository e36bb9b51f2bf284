"""``/console/accounts``: console accounts (admins only). List, create with a role, set a new password,
disable and enable; each change is written to the audit log in the same transaction.

A form with mistakes comes back (422) with each mistake named and what was typed kept, passwords
excepted. The last active admin cannot be disabled, nor can an admin disable their own account:
either would lock the console.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from herald.core.console import ROLE_NAMES, Role, normalized_username, password_problem, username_problem
from herald.core.errors import Conflict
from herald.core.passwords import hash_password
from herald.store import console as console_store
from herald.store.console import ConsoleAccount
from herald.web.console.auth import Admin, Console, ConsoleDenied
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/accounts"


def password_errors(console: Console, password: str, confirm: str) -> list[str]:
    problem = password_problem(password)
    if problem is not None:
        return [console.t("accounts.err.password", problem=problem)]
    if password != confirm:
        return [console.t("accounts.err.mismatch")]
    return []


async def _list_page(
    console: Console, *, status: int = 200, errors: list[str] | None = None, typed: dict[str, str] | None = None
) -> Response:
    async with console.herald.db.read() as conn:
        accounts = await console_store.list_accounts(conn)
    return render(
        console,
        "accounts.html",
        status=status,
        title="accounts.title",
        nav="accounts",
        accounts=accounts,
        roles=ROLE_NAMES,
        errors=errors or [],
        typed=typed or {"username": "", "role": Role.VIEWER.value},
    )


@router.get(BASE)
async def accounts_page(console: Admin) -> Response:
    return await _list_page(console)


@router.post(BASE)
async def create_account(console: Admin) -> Response:
    form = console.form
    username = normalized_username(form.get("username"))
    role_name = form.get("role")
    password = form.get("password")
    errors = []
    problem = username_problem(username)
    if problem is not None:
        errors.append(console.t("accounts.err.username", problem=problem))
    if role_name not in ROLE_NAMES:
        errors.append(console.t("accounts.err.role"))
    errors += password_errors(console, password, form.get("confirm"))
    typed = {"username": username[:200], "role": role_name if role_name in ROLE_NAMES else Role.VIEWER.value}
    if errors:
        return await _list_page(console, status=422, errors=errors, typed=typed)
    role = Role(role_name)
    encoded = await asyncio.to_thread(hash_password, password)
    try:
        async with console.herald.db.write() as conn:
            account = await console_store.create_account(conn, username, role, encoded)
            await console_store.audit(
                conn, console.account, "account.create", username, {"role": role.value, "id": account.id}
            )
    except Conflict:
        return await _list_page(console, status=409, errors=[console.t("accounts.err.taken")], typed=typed)
    return redirect(BASE, notice="notice.account_created")


async def _account(console: Console, account_id: str) -> ConsoleAccount:
    async with console.herald.db.read() as conn:
        account = await console_store.get_account(conn, account_id[:40])
    if account is None:
        raise ConsoleDenied(404, "error.not_found")
    return account


async def _detail_page(
    console: Console, account: ConsoleAccount, *, status: int = 200, errors: list[str] | None = None
) -> Response:
    return render(
        console,
        "account.html",
        status=status,
        title="accounts.title",
        nav="accounts",
        subject=account,
        errors=errors or [],
    )


@router.get(BASE + "/{account_id}")
async def account_page(account_id: str, console: Admin) -> Response:
    return await _detail_page(console, await _account(console, account_id))


@router.post(BASE + "/{account_id}/password")
async def set_password(account_id: str, console: Admin) -> Response:
    account = await _account(console, account_id)
    password = console.form.get("password")
    errors = password_errors(console, password, console.form.get("confirm"))
    if errors:
        return await _detail_page(console, account, status=422, errors=errors)
    encoded = await asyncio.to_thread(hash_password, password)
    async with console.herald.db.write() as conn:
        await console_store.set_password_hash(conn, account.id, encoded)
        await console_store.audit(conn, console.account, "account.password", account.username, {"id": account.id})
    if account.id == console.account.id:  # their own: this session ended with the others
        return redirect("/console/login?reason=expired")
    return redirect(f"{BASE}/{account.id}", notice="notice.password_set")


@router.post(BASE + "/{account_id}/disable")
async def disable_account(account_id: str, console: Admin) -> Response:
    account = await _account(console, account_id)
    if account.id == console.account.id:
        return await _detail_page(console, account, status=409, errors=[console.t("accounts.err.self")])
    async with console.herald.db.write() as conn:
        if account.role is Role.ADMIN and not account.disabled and await console_store.count_enabled_admins(conn) <= 1:
            raise ConsoleDenied(409, "accounts.err.last_admin")
        await console_store.set_disabled(conn, account.id, True)
        await console_store.audit(conn, console.account, "account.disable", account.username, {"id": account.id})
    return redirect(f"{BASE}/{account.id}", notice="notice.account_disabled")


@router.post(BASE + "/{account_id}/enable")
async def enable_account(account_id: str, console: Admin) -> Response:
    account = await _account(console, account_id)
    async with console.herald.db.write() as conn:
        await console_store.set_disabled(conn, account.id, False)
        await console_store.audit(conn, console.account, "account.enable", account.username, {"id": account.id})
    return redirect(f"{BASE}/{account.id}", notice="notice.account_enabled")
