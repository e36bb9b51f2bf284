"""Who is asking: the session cookie, the CSRF check, the role check — ``require_console(role)``.

Every console page takes a ``Console`` through one of the dependencies below (``Viewer``,
``Operator``, ``Admin``). The dependency, before the page's own code runs:

1. finds the session of the cookie in the database (its SHA-256; store/console.py), and ends it
   when it has expired (idle or absolute timeout) or its account is disabled; without a session a
   GET is redirected to the login page (``?next=`` back here) and anything else is 403;
2. for every method but GET/HEAD/OPTIONS, reads the form (``application/x-www-form-urlencoded``)
   and compares its ``csrf_token`` field, or the ``X-CSRF-Token`` header, with the session's own
   token: missing or different is 403, before the page's code runs;
3. checks the account's role against the page's: too low is 403.

The page gets the checked form as ``console.form``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Depends, Request

from herald.core.console import Role, session_expiry
from herald.core.inputs import text_problem
from herald.engine.service import Herald
from herald.store import console as console_store
from herald.store.console import ConsoleAccount, ConsoleSession
from herald.store.types import utcnow
from herald.web.console.i18n import Translator, pick_locale

SESSION_COOKIE = "herald_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 1000
# last_seen_at is written at most this often per session: a page view is not a write each time
TOUCH_EVERY = timedelta(seconds=60)
HOME = "/console"


class ConsoleDenied(Exception):
    """Answered with the console's error page: ``status`` and a message key of the catalogue."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **params: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.params = params
        self.headers = headers or {}


class LoginRequired(Exception):
    """Answered with a redirect to the login page, which comes back to ``next`` after the login."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.reason = reason


@dataclass(frozen=True)
class Form:
    """The fields of a submitted form (each name may repeat)."""

    fields: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.fields if key == name), default)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.fields)


@dataclass
class Console:
    """What a console page has: the request, Herald, the logged-in account, the locale and its
    translator, and (for a POST) the form, its CSRF token checked already."""

    request: Request
    herald: Herald
    session: ConsoleSession | None
    t: Translator
    form: Form = field(default_factory=Form)

    @property
    def account(self) -> ConsoleAccount:
        """The logged-in account (every page but the login page has one)."""
        assert self.session is not None, "a public page has no account"
        return self.session.account

    @property
    def locale(self) -> str:
        return self.t.locale

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token if self.session is not None else ""


def is_https(request: Request) -> bool:
    """Whether the browser reached us over https. ``herald serve``/``api`` run uvicorn with
    ``proxy_headers``: behind a proxy it trusts (``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default) the
    proxy's ``X-Forwarded-Proto`` is the scheme seen here."""
    return request.url.scheme == "https"


def console_of(request: Request, session: ConsoleSession | None = None, form: Form | None = None) -> Console:
    herald: Herald = request.app.state.herald
    translator = Translator(pick_locale(request, herald.settings.default_locale))
    return Console(request, herald, session, translator, form or Form())


async def read_form(request: Request) -> Form:
    """The urlencoded body (the console's forms); JSON bodies (a page's script, which sends its CSRF
    token as a header) and empty ones give an empty form. A NUL or a non-UTF-8 body is 400."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if not body or media != FORM_TYPE:
        if body and media not in ("application/json", FORM_TYPE):
            raise ConsoleDenied(415, "error.form_type")
        return Form()
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConsoleDenied(400, "error.form_encoding") from exc
    for name, value in pairs:
        if text_problem(name) or text_problem(value):
            raise ConsoleDenied(400, "error.form_text", field=name[:60])
    return Form(tuple(pairs))


def tokens_match(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def current_session(request: Request, herald: Herald, now: datetime) -> ConsoleSession | None:
    """The cookie's live session, or None; an expired session or a disabled account's is ended."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    settings = herald.settings
    async with herald.db.read() as conn:
        session = await console_store.find_session(conn, token)
    if session is None:
        return None
    expired = session_expiry(
        session.created_at,
        session.last_seen_at,
        now,
        idle=timedelta(minutes=settings.console_session_idle_minutes),
        absolute=timedelta(hours=settings.console_session_max_hours),
    )
    if expired or session.account.disabled:
        async with herald.db.write() as conn:
            await console_store.end_session(conn, session.id)
        raise LoginRequired(_here(request), reason="expired" if expired else None)
    if now - session.last_seen_at >= TOUCH_EVERY:
        async with herald.db.write() as conn:
            await console_store.touch_session(conn, session.id, now)
    return session


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def require_console(role: Role) -> Callable[[Request], Awaitable[Console]]:
    """A dependency giving the ``Console`` of a logged-in account holding at least ``role``, after
    the session, CSRF and role checks described at the top of this module."""

    async def dependency(request: Request) -> Console:
        herald: Herald = request.app.state.herald
        try:
            session = await current_session(request, herald, utcnow())
        except LoginRequired as expired:
            if request.method in SAFE_METHODS:
                raise
            raise ConsoleDenied(403, "error.session_expired") from expired
        if session is None:
            if request.method in SAFE_METHODS:
                raise LoginRequired(_here(request))
            raise ConsoleDenied(403, "error.session_expired")
        form = Form()
        if request.method not in SAFE_METHODS:
            form = await read_form(request)
            given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
            if not tokens_match(given, session.csrf_token):
                raise ConsoleDenied(403, "error.csrf")
        if not session.account.role.allows(role):
            raise ConsoleDenied(403, "error.role", role=role.value)
        return console_of(request, session, form)

    dependency.__name__ = f"require_console_{role.value}"
    return dependency


Viewer = Annotated[Console, Depends(require_console(Role.VIEWER))]
"""Any logged-in account: pages that only read."""
Operator = Annotated[Console, Depends(require_console(Role.OPERATOR))]
"""Operators and admins: sending, editing content."""
Admin = Annotated[Console, Depends(require_console(Role.ADMIN))]
"""Admins only: console accounts, API keys, channel accounts, the audit log."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def safe_next(value: str | None, *, to_login: bool = False) -> str:
    """Where a login (or the language switch) may send the browser back to: a console path on this
    site, else the dashboard (no open redirect: ``//evil.example``, ``/console@evil``, ``/\\evil`` and
    the like give ``HOME``). The login page itself only with ``to_login``; never the logout."""
    if not value or len(value) > 2000 or text_problem(value) or "\\" in value or any(ord(c) < 32 for c in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/"):
        return HOME
    path = parts.path
    if path != HOME and not path.startswith(HOME + "/"):
        return HOME
    if path.startswith((HOME + "/logout", HOME + "/lang")) or (path.startswith(HOME + "/login") and not to_login):
        return HOME
    return value


def login_url(next_path: str, reason: str | None = None) -> str:
    url = f"{HOME}/login"
    query = []
    if next_path and next_path != HOME:
        query.append("next=" + quote(next_path, safe="/"))
    if reason:
        query.append("reason=" + quote(reason))
    return url + ("?" + "&".join(query) if query else "")
