"""Helpers for the console's HTTP tests: accounts made in the database, a login through the form,
the CSRF token read from a page, the session's times moved in the database."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from sqlalchemy import select, update

from herald.core.console import Role
from herald.core.passwords import hash_password
from herald.engine.service import Herald
from herald.store import console as console_store
from herald.store.console import ConsoleAccount
from herald.store.tables import console_audit, console_sessions

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_account(
    herald: Herald, username: str, role: Role = Role.ADMIN, password: str = PASSWORD
) -> ConsoleAccount:
    async with herald.db.write() as conn:
        return await console_store.create_account(conn, username, role, hash_password(password))


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, *, next_path: str = "", **headers: str
) -> httpx.Response:
    page = await client.get("/console/login", headers=headers)
    assert page.status_code == 200, page.text
    return await client.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "username": username, "password": password, "next": next_path},
        headers=headers,
    )


async def logged_in(client: httpx.AsyncClient, herald: Herald, username: str, role: Role = Role.ADMIN) -> str:
    """A new account of ``role`` logged in on ``client``; the session's CSRF token."""
    await make_account(herald, username, role)
    r = await login(client, username)
    assert r.status_code == 303, r.text
    return await page_csrf(client)


async def page_csrf(client: httpx.AsyncClient, path: str = "/console") -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


async def move_sessions(herald: Herald, **times: datetime) -> None:
    """Set ``created_at`` and/or ``last_seen_at`` of every session."""
    async with herald.db.write() as conn:
        await conn.execute(update(console_sessions).values(**times))


async def session_count(herald: Herald) -> int:
    async with herald.db.read() as conn:
        return len((await conn.execute(select(console_sessions.c.id))).all())


async def audit_rows(herald: Herald) -> list[tuple[str, str, str | None, dict[str, object]]]:
    """(actor, action, target, details), oldest first."""
    async with herald.db.read() as conn:
        rows = await conn.execute(
            select(
                console_audit.c.actor, console_audit.c.action, console_audit.c.target, console_audit.c.details
            ).order_by(console_audit.c.id)
        )
        return [(r.actor, r.action, r.target, dict(r.details)) for r in rows]
