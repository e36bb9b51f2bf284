"""The console's door, over HTTP on SQLite and PostgreSQL: login and logout, wrong passwords, the
throttle, idle and absolute expiry, CSRF, roles, cookies, redirects, escaping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from herald.core.console import Role
from herald.store.tables import console_accounts, console_login_failures, console_sessions
from herald.store.types import utcnow
from tests.conftest import Harness, make_settings, running_harness
from tests.web.console_support import (
    PASSWORD,
    audit_rows,
    csrf_of,
    logged_in,
    login,
    make_account,
    move_sessions,
    session_count,
)

NEW_ACCOUNT = {"username": "carol", "role": "viewer", "password": "a long password", "confirm": "a long password"}


def set_cookie(r: httpx.Response, name: str) -> str:
    (header,) = [h for h in r.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return header


async def accounts_named(h: Harness, username: str) -> int:
    async with h.herald.db.read() as conn:
        rows = await conn.execute(select(console_accounts.c.id).where(console_accounts.c.username == username))
        return len(rows.all())


# -- login and logout ---------------------------------------------------------------------------------


async def test_login_opens_a_session_with_a_safe_cookie_and_logout_ends_it(harness: Harness) -> None:
    account = await make_account(harness.herald, "alice")
    r = await login(harness.client, "alice")
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = set_cookie(r, "herald_console").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert "secure" not in cookie and "max-age" not in cookie  # http here; ends with the browser
    page = await harness.client.get("/console")
    assert page.status_code == 200 and "alice" in page.text
    for header, value in {
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
    }.items():
        assert page.headers[header] == value
    assert "script-src 'self'" in page.headers["content-security-policy"]
    async with harness.herald.db.read() as conn:
        (last_login,) = (
            await conn.execute(select(console_accounts.c.last_login_at).where(console_accounts.c.id == account.id))
        ).one()
    assert last_login is not None

    token = csrf_of(page.text)
    out = await harness.client.post("/console/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/console/login?reason=logged_out"
    assert await session_count(harness.herald) == 0
    again = await harness.client.get("/console")
    assert again.status_code == 303 and again.headers["location"] == "/console/login"
    assert [(a, action) for a, action, _, _ in await audit_rows(harness.herald)] == [
        ("alice", "console.login"),
        ("alice", "console.logout"),
    ]


async def test_the_cookie_is_secure_over_https(harness: Harness) -> None:
    transport = harness.client._transport
    async with httpx.AsyncClient(transport=transport, base_url="https://herald.test") as client:
        await make_account(harness.herald, "alice")
        r = await login(client, "alice")
        assert r.status_code == 303
        assert "secure" in set_cookie(r, "herald_console").lower()


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(harness: Harness) -> None:
    await make_account(harness.herald, "alice")
    wrong = await login(harness.client, "alice", "not the password")
    unknown = await login(harness.client, "mallory", "not the password")
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert "Wrong username or password" in r.text or "用户名或密码错误" in r.text
        assert not any(h.startswith("herald_console=") for h in r.headers.get_list("set-cookie"))
    assert 'value="alice"' in wrong.text  # the username is kept, never the password
    assert "not the password" not in wrong.text
    assert await session_count(harness.herald) == 0


async def test_a_disabled_account_cannot_log_in(harness: Harness) -> None:
    account = await make_account(harness.herald, "alice")
    async with harness.herald.db.write() as conn:
        await conn.execute(update(console_accounts).values(disabled=True).where(console_accounts.c.id == account.id))
    assert (await login(harness.client, "alice")).status_code == 401


async def test_a_login_post_without_the_forms_token_is_403(harness: Harness) -> None:
    await make_account(harness.herald, "alice")
    r = await harness.client.post("/console/login", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 403
    page = await harness.client.get("/console/login")
    forged = await harness.client.post(
        "/console/login", data={"csrf_token": "x" * 43, "username": "alice", "password": PASSWORD}
    )
    assert page.status_code == 200 and forged.status_code == 403
    assert await session_count(harness.herald) == 0


async def test_a_page_asked_for_before_login_is_shown_after_it(harness: Harness) -> None:
    await make_account(harness.herald, "alice")
    r = await harness.client.get("/console/audit?action=console.login")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/audit%3Faction%3Dconsole.login"
    done = await login(harness.client, "alice", next_path="/console/audit?action=console.login")
    assert done.headers["location"] == "/console/audit?action=console.login"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/x", "https://evil.example/", "/console@evil.example", "/\\evil.example", "/consolex", "/v1/me"],
)
async def test_login_never_redirects_off_the_console(harness: Harness, next_path: str) -> None:
    await make_account(harness.herald, "alice")
    done = await login(harness.client, "alice", next_path=next_path)
    assert done.status_code == 303 and done.headers["location"] == "/console"


# -- throttling ----------------------------------------------------------------------------------------


async def test_five_failures_for_a_username_make_it_wait_whatever_the_password(harness: Harness) -> None:
    await make_account(harness.herald, "alice")
    for _ in range(5):
        assert (await login(harness.client, "alice", "guess")).status_code == 401
    r = await login(harness.client, "alice")  # the right password, too late
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60
    assert "Too many failed logins" in r.text or "登录失败次数过多" in r.text
    assert await session_count(harness.herald) == 0
    # another username from the same address is not locked by alice's failures (limit 20 per address)
    await make_account(harness.herald, "bob")
    assert (await login(harness.client, "bob")).status_code == 303
    harness.client.cookies.clear()
    # once the failures leave the window, alice logs in, and her count starts again
    async with harness.herald.db.write() as conn:
        await conn.execute(update(console_login_failures).values(failed_at=utcnow() - timedelta(minutes=16)))
    assert (await login(harness.client, "alice")).status_code == 303
    async with harness.herald.db.read() as conn:
        keys = {r.key for r in await conn.execute(select(console_login_failures.c.key))}
    assert "user:alice" not in keys


@pytest.fixture
async def strict(database_url: str) -> AsyncIterator[Harness]:
    settings = make_settings(database_url, console_login_max_failures_per_address=3)
    async with running_harness(settings) as h:
        yield h


async def test_failures_from_one_address_across_usernames_make_it_wait(strict: Harness) -> None:
    await make_account(strict.herald, "alice")
    for name in ("a1", "a2", "a3"):
        assert (await login(strict.client, name, "guess")).status_code == 401
    r = await login(strict.client, "alice")
    assert r.status_code == 429 and "retry-after" in r.headers


# -- expiry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moved", "expired"),
    [
        ({"last_seen_at": timedelta(minutes=31)}, True),
        ({"last_seen_at": timedelta(minutes=29)}, False),
        ({"created_at": timedelta(hours=12, minutes=1)}, True),
        ({"created_at": timedelta(hours=11, minutes=59)}, False),
    ],
)
async def test_sessions_expire_when_idle_and_after_12_hours(
    harness: Harness, moved: dict[str, timedelta], expired: bool
) -> None:
    await logged_in(harness.client, harness.herald, "alice")
    await move_sessions(harness.herald, **{k: utcnow() - v for k, v in moved.items()})
    r = await harness.client.get("/console/accounts")
    if expired:
        assert r.status_code == 303
        assert r.headers["location"] == "/console/login?next=/console/accounts&reason=expired"
        assert await session_count(harness.herald) == 0
        login_page = await harness.client.get(r.headers["location"])
        assert "session has expired" in login_page.text or "会话已过期" in login_page.text
    else:
        assert r.status_code == 200


async def test_using_a_session_keeps_it_alive(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice")
    await move_sessions(harness.herald, last_seen_at=utcnow() - timedelta(minutes=20))
    assert (await harness.client.get("/console")).status_code == 200
    async with harness.herald.db.read() as conn:
        (seen,) = (await conn.execute(select(console_sessions.c.last_seen_at))).one()
    assert utcnow() - seen < timedelta(minutes=1)


async def test_an_expired_session_cannot_post_even_with_its_token(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    await move_sessions(harness.herald, created_at=utcnow() - timedelta(hours=13))
    r = await harness.client.post("/console/accounts", data={**NEW_ACCOUNT, "csrf_token": token})
    assert r.status_code == 403
    assert await accounts_named(harness, "carol") == 0


# -- CSRF and roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token", "x" * 43])
async def test_a_post_without_the_sessions_csrf_token_is_403(harness: Harness, token: str | None) -> None:
    await logged_in(harness.client, harness.herald, "alice")
    data: dict[str, Any] = dict(NEW_ACCOUNT)
    if token is not None:
        data["csrf_token"] = token
    r = await harness.client.post("/console/accounts", data=data)
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert await accounts_named(harness, "carol") == 0
    logout = await harness.client.post("/console/logout", data={"csrf_token": token or ""})
    assert logout.status_code == 403 and await session_count(harness.herald) == 1


async def test_another_sessions_token_is_refused(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice")
    transport = harness.client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as other:
        their_token = await logged_in(other, harness.herald, "bob")
    r = await harness.client.post("/console/accounts", data={**NEW_ACCOUNT, "csrf_token": their_token})
    assert r.status_code == 403 and await accounts_named(harness, "carol") == 0


async def test_the_token_may_come_as_a_header(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    r = await harness.client.post("/console/accounts", data=NEW_ACCOUNT, headers={"X-CSRF-Token": token})
    assert r.status_code == 303 and await accounts_named(harness, "carol") == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_only_an_admin_manages_accounts(harness: Harness, role: Role) -> None:
    token = await logged_in(harness.client, harness.herald, "vic", role)
    dashboard = await harness.client.get("/console")
    assert dashboard.status_code == 200 and 'href="/console/accounts"' not in dashboard.text
    assert (await harness.client.get("/console/accounts")).status_code == 403
    assert (await harness.client.get("/console/audit")).status_code == 403
    r = await harness.client.post("/console/accounts", data={**NEW_ACCOUNT, "csrf_token": token})
    assert r.status_code == 403 and await accounts_named(harness, "carol") == 0
    assert "role" in r.text.lower() or "角色" in r.text
    out = await harness.client.post("/console/logout", data={"csrf_token": token})  # any role logs out
    assert out.status_code == 303


async def test_a_form_with_a_nul_or_bad_utf8_is_400(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    form = {"content-type": "application/x-www-form-urlencoded"}
    nul = await harness.client.post(
        "/console/accounts", content=f"csrf_token={token}&username=a%00b&role=viewer", headers=form
    )
    bad = await harness.client.post("/console/accounts", content=f"csrf_token={token}&username=%ff", headers=form)
    assert (nul.status_code, bad.status_code) == (400, 400)
    multipart = await harness.client.post(
        "/console/accounts", files={"username": ("x", b"carol")}, data={"csrf_token": token}
    )
    assert multipart.status_code == 415


# -- escaping ------------------------------------------------------------------------------------------

XSS = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("username", [XSS, ATTR])
async def test_a_hostile_username_renders_as_text_everywhere(harness: Harness, username: str) -> None:
    await make_account(harness.herald, username)
    assert (await login(harness.client, username)).status_code == 303
    for path in ("/console", "/console/accounts", "/console/audit"):
        page = await harness.client.get(path)
        assert page.status_code == 200, path
        assert username not in page.text, path
        assert "&lt;" in page.text and ("&lt;script&gt;" in page.text or "&#34;&gt;&lt;img" in page.text), path
    harness.client.cookies.clear()
    wrong = await login(harness.client, username, "nope")
    assert username not in wrong.text


# -- language ------------------------------------------------------------------------------------------


async def test_the_browsers_language_then_the_switch(harness: Harness) -> None:
    zh = await harness.client.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    en = await harness.client.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="zh-CN">' in zh.text and "用户名" in zh.text
    assert '<html lang="en">' in en.text and "Username" in en.text
    switch = await harness.client.get("/console/lang/en?next=/console/login")
    assert switch.status_code == 303 and switch.headers["location"] == "/console/login"
    assert "samesite=lax" in set_cookie(switch, "herald_console_lang").lower()
    after = await harness.client.get("/console/login", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in after.text  # the switch wins over the browser
    away = await harness.client.get("/console/lang/zh-CN?next=https://evil.example/")
    assert away.headers["location"] == "/console"
    assert (await harness.client.get("/console/lang/fr")).status_code == 404
