"""The admin console's rows: accounts, server-side sessions, failed logins and the audit log.

Passwords arrive here already hashed (core/passwords.py); session tokens never arrive at all, only
their SHA-256 (``session_id``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.console import Role, redacted
from herald.core.errors import Conflict
from herald.core.ids import new_id
from herald.store.dialect import upsert
from herald.store.tables import console_accounts, console_audit, console_login_failures, console_sessions
from herald.store.types import utcnow


@dataclass(frozen=True)
class ConsoleAccount:
    id: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class ConsoleSession:
    id: str
    account: ConsoleAccount
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


CLI_ACTOR = "cli"
"""The audit log's actor for changes made with ``herald admin …`` (no console account made them)."""

_ACCOUNT_COLUMNS = (
    console_accounts.c.id,
    console_accounts.c.username,
    console_accounts.c.role,
    console_accounts.c.disabled,
    console_accounts.c.created_at,
    console_accounts.c.last_login_at,
)


def _account(row: Any) -> ConsoleAccount:
    return ConsoleAccount(row.id, row.username, Role(row.role), bool(row.disabled), row.created_at, row.last_login_at)


# -- accounts ----------------------------------------------------------------------------------------


async def create_account(conn: AsyncConnection, username: str, role: Role, password_hash: str) -> ConsoleAccount:
    """A new account; ``Conflict`` when the username is taken (also by a concurrent create)."""
    now = utcnow()
    account_id = new_id("cac")
    stmt = (
        upsert(conn, console_accounts)
        .values(
            id=account_id,
            username=username,
            role=role.value,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["username"])
    )
    if (await conn.execute(stmt)).rowcount == 0:
        raise Conflict(f"a console account named {username!r} exists already")
    return ConsoleAccount(account_id, username, role, False, now, None)


async def get_account(conn: AsyncConnection, account_id: str) -> ConsoleAccount | None:
    row = (await conn.execute(select(*_ACCOUNT_COLUMNS).where(console_accounts.c.id == account_id))).first()
    return _account(row) if row else None


async def find_account(conn: AsyncConnection, username: str) -> ConsoleAccount | None:
    row = (await conn.execute(select(*_ACCOUNT_COLUMNS).where(console_accounts.c.username == username))).first()
    return _account(row) if row else None


async def password_hash_of(conn: AsyncConnection, username: str) -> tuple[ConsoleAccount, str] | None:
    query = select(*_ACCOUNT_COLUMNS, console_accounts.c.password_hash).where(console_accounts.c.username == username)
    row = (await conn.execute(query)).first()
    return (_account(row), row.password_hash) if row else None


async def list_accounts(conn: AsyncConnection) -> list[ConsoleAccount]:
    rows = await conn.execute(select(*_ACCOUNT_COLUMNS).order_by(console_accounts.c.username))
    return [_account(r) for r in rows]


async def count_accounts(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(console_accounts))).scalar_one())


async def count_enabled_admins(conn: AsyncConnection) -> int:
    query = (
        select(func.count())
        .select_from(console_accounts)
        .where(console_accounts.c.role == Role.ADMIN.value, console_accounts.c.disabled.is_(False))
    )
    return int((await conn.execute(query)).scalar_one())


async def set_password_hash(conn: AsyncConnection, account_id: str, password_hash: str) -> None:
    """A new password; every session of the account ends (whoever held one must log in with it)."""
    await conn.execute(
        update(console_accounts).where(console_accounts.c.id == account_id).values(password_hash=password_hash)
    )
    await end_sessions_of(conn, account_id)


async def set_disabled(conn: AsyncConnection, account_id: str, disabled: bool) -> None:
    """Disabling ends every session of the account at once."""
    await conn.execute(update(console_accounts).where(console_accounts.c.id == account_id).values(disabled=disabled))
    if disabled:
        await end_sessions_of(conn, account_id)


async def record_login(conn: AsyncConnection, account_id: str, now: datetime, password_hash: str | None) -> None:
    """``last_login_at``; and the password's new hash when its parameters were out of date."""
    values: dict[str, Any] = {"last_login_at": now}
    if password_hash is not None:
        values["password_hash"] = password_hash
    await conn.execute(update(console_accounts).where(console_accounts.c.id == account_id).values(**values))


# -- sessions ----------------------------------------------------------------------------------------


def session_id(token: str) -> str:
    """What the database keeps of a session token: its SHA-256 (the token has 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_session(conn: AsyncConnection, token: str, account_id: str, csrf_token: str, now: datetime) -> None:
    await conn.execute(
        insert(console_sessions).values(
            id=session_id(token), account_id=account_id, csrf_token=csrf_token, created_at=now, last_seen_at=now
        )
    )


async def find_session(conn: AsyncConnection, token: str) -> ConsoleSession | None:
    """The session of ``token`` with its account (disabled or not: the caller decides)."""
    query = (
        select(
            *_ACCOUNT_COLUMNS,
            console_sessions.c.id.label("session_id"),
            console_sessions.c.csrf_token,
            console_sessions.c.created_at.label("session_created_at"),
            console_sessions.c.last_seen_at,
        )
        .join(console_accounts, console_accounts.c.id == console_sessions.c.account_id)
        .where(console_sessions.c.id == session_id(token))
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return ConsoleSession(row.session_id, _account(row), row.csrf_token, row.session_created_at, row.last_seen_at)


async def touch_session(conn: AsyncConnection, sid: str, now: datetime) -> None:
    await conn.execute(update(console_sessions).where(console_sessions.c.id == sid).values(last_seen_at=now))


async def end_session(conn: AsyncConnection, sid: str) -> None:
    await conn.execute(delete(console_sessions).where(console_sessions.c.id == sid))


async def end_sessions_of(conn: AsyncConnection, account_id: str) -> None:
    await conn.execute(delete(console_sessions).where(console_sessions.c.account_id == account_id))


async def end_expired_sessions(
    conn: AsyncConnection, account_id: str, idle_since: datetime, born_since: datetime
) -> None:
    """An account's sessions that have expired (tidied at each of its logins: the table stays small)."""
    await conn.execute(
        delete(console_sessions).where(
            console_sessions.c.account_id == account_id,
            or_(console_sessions.c.last_seen_at <= idle_since, console_sessions.c.created_at <= born_since),
        )
    )


# -- failed logins -----------------------------------------------------------------------------------


async def recent_failures(conn: AsyncConnection, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
    query = select(console_login_failures.c.key, console_login_failures.c.failed_at).where(
        console_login_failures.c.key.in_(keys), console_login_failures.c.failed_at > since
    )
    found: dict[str, list[datetime]] = {key: [] for key in keys}
    for row in await conn.execute(query):
        found[row.key].append(row.failed_at)
    return found


async def record_failure(conn: AsyncConnection, keys: Sequence[str], now: datetime, forget_before: datetime) -> None:
    """One failure against each key; failures of these keys that left the window are deleted."""
    await conn.execute(
        delete(console_login_failures).where(
            console_login_failures.c.key.in_(keys), console_login_failures.c.failed_at <= forget_before
        )
    )
    await conn.execute(
        insert(console_login_failures), [{"id": new_id("clf"), "key": k, "failed_at": now} for k in keys]
    )


async def forget_failures(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(console_login_failures).where(console_login_failures.c.key == key))


# -- the audit log -----------------------------------------------------------------------------------


async def audit(
    conn: AsyncConnection,
    actor: ConsoleAccount | str,
    action: str,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Append one entry to the audit log, in the caller's transaction (the entry and the change it
    records commit together or not at all). ``actor`` is the console account that made the change,
    or a name (``CLI_ACTOR``); ``action`` a dotted name (``account.create``); ``target`` what it was
    made to (a username, a type key, …); ``details`` any JSON, secrets redacted (``core.console.redacted``)."""
    entry_id = new_id("aud")
    actor_id, actor_name = (actor.id, actor.username) if isinstance(actor, ConsoleAccount) else (None, actor)
    await conn.execute(
        insert(console_audit).values(
            id=entry_id,
            at=utcnow(),
            actor_id=actor_id,
            actor=actor_name,
            action=action,
            target=target,
            details=redacted(details or {}),
        )
    )
    return entry_id


async def list_audit(
    conn: AsyncConnection,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """Entries newest first, older than ``before`` (an entry's ``(at, id)``) when given, of one actor
    and/or one action."""
    query = select(console_audit).order_by(console_audit.c.at.desc(), console_audit.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(tuple_(console_audit.c.at, console_audit.c.id) < tuple_(*before))
    if actor is not None:
        query = query.where(console_audit.c.actor == actor)
    if action is not None:
        query = query.where(console_audit.c.action == action)
    rows = await conn.execute(query)
    return [AuditEntry(r.id, r.at, r.actor, r.action, r.target, dict(r.details or {})) for r in rows]


async def audit_actions(conn: AsyncConnection) -> list[str]:
    """The actions the log holds (for the filter's choices): read by the action index alone."""
    rows = await conn.execute(select(console_audit.c.action).distinct().order_by(console_audit.c.action))
    return [r.action for r in rows]
