"""``/console/login`` (form fields ``username``, ``password``), ``POST /console/logout`` and the
language switch ``/console/lang/{locale}``.

The login form is protected from cross-site posting by a double-submit token: the page sets a
random cookie (path ``/console/login``, SameSite=Lax) and puts the same value in the form; a POST
whose field does not match its cookie is 403. Failed logins are counted per username and per
client address (``console_login_failures``); past the limits the login answers 429 until the
oldest failure leaves the window, whatever the password. An unknown username is checked against a
dummy hash, so it takes as long to refuse as a wrong password.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from herald.core.console import normalized_username, throttle_wait
from herald.core.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from herald.engine.service import Herald
from herald.store import console as console_store
from herald.store.console import ConsoleAccount
from herald.store.types import utcnow
from herald.web.console.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Console,
    ConsoleDenied,
    LoginRequired,
    Viewer,
    console_of,
    current_session,
    is_https,
    new_token,
    read_form,
    safe_next,
    tokens_match,
)
from herald.web.console.i18n import LANG_COOKIE, MESSAGES
from herald.web.console.render import redirect, render

LOGIN_COOKIE = "herald_console_login"
LOGIN_PATH = "/console/login"
MAX_USERNAME_TRIED = 200  # longer names are cut for the throttle's key (no account has one)

router = APIRouter(include_in_schema=False)


def _login_page(
    console: Console, *, status: int = 200, error: str = "", username: str = "", next_path: str = ""
) -> Response:
    request = console.request
    token = request.cookies.get(LOGIN_COOKIE) or ""
    if not 20 <= len(token) <= 100:
        token = new_token()
    reason = request.query_params.get("reason", "")
    info = {"expired": "login.expired", "logged_out": "login.logged_out"}.get(reason, "")
    response = render(
        console,
        "login.html",
        status=status,
        title="login.title",
        login_csrf=token,
        error=error,
        info=info,
        username=username,
        next_path=next_path or request.query_params.get("next", ""),
    )
    response.set_cookie(
        LOGIN_COOKIE, token, path=LOGIN_PATH, httponly=True, samesite="lax", secure=is_https(request), max_age=3600
    )
    return response


@router.get(LOGIN_PATH)
async def login_form(request: Request) -> Response:
    herald: Herald = request.app.state.herald
    try:
        session = await current_session(request, herald, utcnow())
    except LoginRequired:
        session = None
    if session is not None:  # logged in already
        return redirect(safe_next(request.query_params.get("next")))
    return _login_page(console_of(request))


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _failure_keys(username: str, address: str) -> tuple[str, str]:
    return f"user:{username[:MAX_USERNAME_TRIED]}", f"addr:{address}"


async def _throttled_for(herald: Herald, keys: tuple[str, str], now: datetime) -> float:
    settings = herald.settings
    window = timedelta(minutes=settings.console_login_lockout_minutes)
    async with herald.db.read() as conn:
        failures = await console_store.recent_failures(conn, keys, now - window)
    return max(
        throttle_wait(failures[keys[0]], now, limit=settings.console_login_max_failures, window=window),
        throttle_wait(failures[keys[1]], now, limit=settings.console_login_max_failures_per_address, window=window),
    )


async def _check_password(herald: Herald, username: str, password: str) -> tuple[ConsoleAccount, str] | None:
    """The account and its stored hash when ``password`` is its password and it is not disabled."""
    async with herald.db.read() as conn:
        found = await console_store.password_hash_of(conn, username) if username else None
    encoded = found[1] if found is not None else dummy_hash()
    # argon2 takes tens of milliseconds of CPU: off the event loop, which keeps serving meanwhile
    matches = await asyncio.to_thread(verify_password, encoded, password)
    if found is None or not matches or found[0].disabled:
        return None
    return found


@router.post(LOGIN_PATH)
async def login(request: Request) -> Response:
    herald: Herald = request.app.state.herald
    console = console_of(request)
    form = await read_form(request)
    if not tokens_match(form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE, "")):
        raise ConsoleDenied(403, "error.login_form")
    username = normalized_username(form.get("username"))
    password = form.get("password")
    next_path = form.get("next")
    now = utcnow()
    keys = _failure_keys(username, _client_address(request))
    wait = await _throttled_for(herald, keys, now)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        raise ConsoleDenied(
            429, "login.throttled", headers={"Retry-After": str(max(1, math.ceil(wait)))}, minutes=minutes
        )
    found = await _check_password(herald, username, password) if len(password) <= 1024 else None
    if found is None:
        forget_before = now - timedelta(minutes=herald.settings.console_login_lockout_minutes)
        async with herald.db.write() as conn:
            await console_store.record_failure(conn, keys, now, forget_before)
        return _login_page(
            console, status=401, error="login.failed", username=username[:MAX_USERNAME_TRIED], next_path=next_path
        )
    account, encoded = found
    return await _start_session(request, herald, account, encoded, password, now, next_path, keys[0])


async def _start_session(
    request: Request,
    herald: Herald,
    account: ConsoleAccount,
    encoded: str,
    password: str,
    now: datetime,
    next_path: str,
    user_key: str,
) -> Response:
    settings = herald.settings
    token, csrf = new_token(), new_token()
    rehashed = await asyncio.to_thread(hash_password, password) if needs_rehash(encoded) else None
    async with herald.db.write() as conn:
        old = request.cookies.get(SESSION_COOKIE)
        if old:  # whatever session this browser had ends with the new login
            await console_store.end_session(conn, console_store.session_id(old))
        await console_store.end_expired_sessions(
            conn,
            account.id,
            idle_since=now - timedelta(minutes=settings.console_session_idle_minutes),
            born_since=now - timedelta(hours=settings.console_session_max_hours),
        )
        await console_store.create_session(conn, token, account.id, csrf, now)
        await console_store.record_login(conn, account.id, now, rehashed)
        await console_store.forget_failures(conn, user_key)
        await console_store.audit(conn, account, "console.login", account.username)
    response = redirect(safe_next(next_path))
    # no Max-Age: the cookie ends with the browser; the server ends the session on its timeouts
    response.set_cookie(SESSION_COOKIE, token, path="/console", httponly=True, samesite="lax", secure=is_https(request))
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/console/logout")
async def logout(console: Viewer) -> Response:
    herald = console.herald
    assert console.session is not None
    async with herald.db.write() as conn:
        await console_store.end_session(conn, console.session.id)
        await console_store.audit(conn, console.account, "console.logout", console.account.username)
    response = redirect(f"{LOGIN_PATH}?reason=logged_out")
    response.delete_cookie(
        SESSION_COOKIE, path="/console", httponly=True, samesite="lax", secure=is_https(console.request)
    )
    return response


@router.get("/console/lang/{locale}")
async def switch_language(locale: str, request: Request) -> Response:
    """Sets the language cookie and goes back. A GET: it changes what this browser is shown, nothing
    on the server, so a link elsewhere that switches someone's language does no harm."""
    if locale not in MESSAGES:
        raise ConsoleDenied(404, "error.not_found")
    response = redirect(safe_next(request.query_params.get("next"), to_login=True))
    response.set_cookie(
        LANG_COOKIE,
        locale,
        path="/console",
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response
