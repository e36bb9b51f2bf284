"""The console in Chromium against a real Herald (uvicorn), on SQLite and PostgreSQL: log in with the
keyboard, switch the language, create a console account and find it in the audit log; hostile
usernames run nothing; a screenshot of each page in zh-CN and en, at 1280 and 390 px wide.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from herald.core.console import Role
from herald.engine.service import Herald
from tests.web.conftest import BrowserPage, LiveHerald, require_playwright, run_async
from tests.web.console_support import PASSWORD, csrf_of, make_account

expect = require_playwright()

PAGES = {"dashboard": "/console", "trace": "/console/trace", "accounts": "/console/accounts", "audit": "/console/audit"}
WIDTHS = {"desktop": 1280, "phone": 390}


def account(live: LiveHerald, username: str, role: Role = Role.ADMIN) -> None:
    async def run() -> None:
        herald = Herald(live.settings)
        try:
            await make_account(herald, username, role)
        finally:
            await herald.close()

    run_async(run)


def log_in_with_the_keyboard(bp: BrowserPage, username: str) -> None:
    page = bp.page
    expect(page.locator("#username")).to_be_focused()  # autofocus
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console$"))


def some_traffic(live: LiveHerald) -> str:
    """A notification with an in-app item and a skipped email (no email account): its id."""
    r = live.client.put("/v1/notification-types/order.paid", json={"channels": ["inapp", "email"]})
    assert r.status_code in (200, 201), r.text
    for channel in ("inapp", "email"):
        r = live.client.put(
            f"/v1/notification-types/order.paid/templates/{channel}", json={"title": "订单已支付", "body": "${n}"}
        )
        assert r.status_code == 200, r.text
    r = live.client.post("/v1/notifications", json={"type": "order.paid", "to": ["alice", "bob"], "data": {"n": 1}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def shoot_every_page(bp: BrowserPage, locale: str, notification_id: str) -> list[Path]:
    shots = []
    for width_name, width in WIDTHS.items():
        bp.page.set_viewport_size({"width": width, "height": 900})
        for name, path in PAGES.items():
            if name == "trace":
                path += f"?id={notification_id}"
            bp.page.goto(bp.page.url.split("/console")[0] + path)
            assert bp.page.locator("main h1").count() == 1
            # nothing wider than the screen: the page scrolls down, never sideways
            overflow = bp.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (name, width, overflow)
            shot = bp.shots / f"console-{name}-{locale}-{width_name}.png"
            bp.page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
    bp.page.set_viewport_size({"width": 1280, "height": 900})
    return shots


def test_log_in_switch_language_create_an_account_and_find_it_in_the_audit_log(
    live: LiveHerald, browser_page: Any
) -> None:
    account(live, "ops-lead")
    notification_id = some_traffic(live)
    bp = browser_page(live.url + "/console/audit", locale="zh-CN")
    page = bp.page
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/audit$"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("main h1")).to_have_text("登录")
    bp.page.screenshot(path=str(bp.shots / "console-login-zh-CN.png"))
    page.keyboard.type("ops-lead")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/audit$"))  # back where it was going
    expect(page.locator("main h1")).to_have_text("操作日志")
    expect(page.locator("nav.side a[aria-current=page]")).to_have_text("操作日志")
    zh_shots = shoot_every_page(bp, "zh-CN", notification_id)

    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("main h1")).to_have_text("Audit log")  # the same page, in English
    page.get_by_role("link", name="Console accounts").click()
    expect(page.locator("main h1")).to_have_text("Console accounts")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Role").select_option("operator")
    page.get_by_label("Password", exact=True).fill("carols password")
    page.get_by_label("Password again").fill("carols password")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".notice")).to_have_text("Account created.")
    expect(page.locator("table.accounts")).to_contain_text("carol")
    expect(page.locator("table.accounts")).to_contain_text("operator")

    page.get_by_role("link", name="Audit log").click()
    first = page.locator("table.audit tbody tr").first
    expect(first).to_contain_text("ops-lead")
    expect(first).to_contain_text("account.create")
    expect(first).to_contain_text("carol")
    expect(first).to_contain_text('"role": "operator"')
    page.get_by_label("Action").select_option("account.create")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.audit tbody tr")).to_have_count(1)
    en_shots = shoot_every_page(bp, "en", notification_id)
    assert all(p.stat().st_size > 5000 for p in zh_shots + en_shots)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/console/login\?reason=logged_out$"))
    expect(page.locator(".notice")).to_have_text("You have logged out.")
    page.goto(live.url + "/console")
    expect(page).to_have_url(re.compile(r"/console/login$"))


def test_the_skip_link_and_the_keyboard_reach_the_content(live: LiveHerald, browser_page: Any) -> None:
    account(live, "ops-lead")
    bp = browser_page(live.url + "/console/login", locale="en")
    log_in_with_the_keyboard(bp, "ops-lead")
    page = bp.page
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused()
    expect(page.locator("a.skip")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # every navigation link is reachable with Tab, in order
    page.locator("a.brand").focus()
    reached = []
    for _ in range(30):
        page.keyboard.press("Tab")
        text = page.evaluate("document.activeElement.textContent.trim()")
        reached.append(text)
    for label in ("Dashboard", "Trace", "Console accounts", "Audit log"):
        assert label in reached, reached


def test_hostile_usernames_render_as_text_and_run_nothing(live: LiveHerald, browser_page: Any) -> None:
    hostile = '<img src=x onerror="window.__xss=1">'
    account(live, hostile)
    account(live, "<script>window.__xss=2</script>", Role.VIEWER)
    bp = browser_page(live.url + "/console/login", locale="en")
    page = bp.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in_with_the_keyboard(bp, hostile)
    expect(page.locator(".me .username")).to_have_text(hostile)
    for path in ("/console", "/console/accounts", "/console/audit", "/console/trace?id=%3Cimg%20src=x%3E"):
        page.goto(live.url + path)
        assert page.evaluate("window.__xss") is None, path
    expect(page.locator("table.audit, main")).not_to_have_count(0)
    page.goto(live.url + "/console/accounts")
    expect(page.locator("table.accounts")).to_contain_text("<script>window.__xss=2</script>")
    assert page.locator("img[src=x]").count() == 0 and not dialogs
    bp.shot("hostile-usernames")


def test_behind_a_proxy_that_says_https_the_cookie_is_secure(live: LiveHerald) -> None:
    """uvicorn takes X-Forwarded-Proto from a trusted proxy (127.0.0.1 by default): the request is https."""
    account(live, "ops-lead")
    headers = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=live.url, headers=headers) as client:
        page = client.get("/console/login")
        login_cookie = page.headers["set-cookie"]
        assert "secure" in login_cookie.lower()
        # a client sends a Secure cookie over https only: the browser does, behind the proxy; here, by hand
        r = client.post(
            "/console/login",
            data={"csrf_token": csrf_of(page.text), "username": "ops-lead", "password": PASSWORD},
            headers={"Cookie": login_cookie.split(";", 1)[0]},
        )
        assert r.status_code == 303, r.text
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("herald_console="))
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
