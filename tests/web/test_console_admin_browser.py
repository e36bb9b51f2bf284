"""Channel accounts, API keys, event webhooks and users in Chromium against a real Herald (uvicorn), on
SQLite and PostgreSQL: configure an email account and send a test to a local SMTP sink, seeing the
provider's answer; create an API key (shown once) and revoke it; create and edit an event webhook;
look a user up and edit them. No secret ever reaches the browser; screenshots of each page in
zh-CN and en at 1280 and 390 px wide, nothing wider than the screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from herald.core.console import Role
from tests.support import Mailbox, free_port
from tests.web.conftest import BrowserPage, LiveHerald, require_playwright
from tests.web.test_console_browser import WIDTHS, account, log_in_with_the_keyboard

expect = require_playwright()

SMTP_PASSWORD = "smtp-pa55-never-in-a-page"
HOOK_SECRET = "hook-secret-never-in-a-page"
PAGES = {
    "channel-accounts": "/console/channel-accounts",
    "channel-account": "/console/channel-accounts/mail-main",
    "api-keys": "/console/api-keys",
    "event-webhooks": "/console/event-webhooks",
    "event-webhook": "/console/event-webhooks/crm",
    "user": "/console/users?id=alice",
}


def _accept(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"herald", SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=_accept, auth_required=True, auth_require_tls=False
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def shoot(bp: BrowserPage, base: str, locale: str) -> list[Path]:
    shots = []
    for width_name, width in WIDTHS.items():
        bp.page.set_viewport_size({"width": width, "height": 900})
        for name, path in PAGES.items():
            bp.page.goto(base + path)
            assert bp.page.locator("main h1").count() == 1, name
            overflow = bp.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (name, width, overflow)
            content = bp.page.content()
            assert SMTP_PASSWORD not in content and HOOK_SECRET not in content, name
            shot = bp.shots / f"console-{name}-{locale}-{width_name}.png"
            bp.page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
    bp.page.set_viewport_size({"width": 1280, "height": 900})
    return shots


def test_an_admin_configures_email_sends_a_test_manages_keys_webhooks_and_users(
    live: LiveHerald, browser_page: Any, smtp_sink: tuple[Mailbox, int]
) -> None:
    box, port = smtp_sink
    account(live, "ops-lead")
    r = live.client.put("/v1/users/alice", json={"name": "Alice", "email": "alice@example.com", "tags": ["vip"]})
    assert r.status_code == 200, r.text
    bp = browser_page(live.url + "/console/login", locale="en")
    page = bp.page
    page.on("dialog", lambda d: d.accept())  # data-confirm: yes
    log_in_with_the_keyboard(bp, "ops-lead")

    # -- channel account: a form generated from the email channel's schema, then a test send
    page.get_by_role("link", name="Channel accounts").click()
    expect(page.locator("main h1")).to_have_text("Channel accounts")
    page.locator("#chacc-new-channel").select_option("email")
    page.get_by_role("button", name="Open the form").click()
    page.get_by_label("Name", exact=True).fill("mail-main")
    page.get_by_label("Routing group").fill("mail")
    page.locator("#cfg-host").fill("127.0.0.1")
    page.locator("#cfg-port").fill(str(port))
    page.locator("#cfg-username").fill("herald")
    page.locator("#cfg-password").fill(SMTP_PASSWORD)
    page.locator("#cfg-sender").fill("Herald <noreply@example.com>")
    page.locator("#cfg-port").press("Enter")  # the keyboard submits the form
    expect(page.locator(".notice")).to_have_text("Channel account saved.")
    expect(page.locator("#cfg-password")).to_have_value("")  # write-only
    expect(page.locator("#cfg-password")).to_have_attribute("placeholder", "stored — leave empty to keep")
    page.get_by_label("Address (email, phone number, openid, URL …)").fill("ops@example.com")
    page.get_by_role("button", name="Send the test").click()
    expect(page.locator("#chacc-answer")).to_contain_text("Sent. The provider answered:")
    expect(page.locator("#chacc-answer")).to_contain_text("provider message id")
    assert [str(m["To"]) for m in box.messages] == ["ops@example.com"]
    bp.shot("channel-account-test-sent")

    # -- API key: shown once, then revoked after the confirmation
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("billing")
    page.get_by_role("button", name="Create the key").click()
    key = page.locator("#new-key").inner_text()
    assert re.fullmatch(r"hk_[A-Za-z0-9_-]{20,}", key)
    assert live.client.get("/v1/channels", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    page.get_by_role("link", name="API keys").click()
    assert key not in page.content()
    row = page.locator("table.api-keys tbody tr", has_text="billing")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".notice")).to_have_text("API key revoked.")
    assert live.client.get("/v1/channels", headers={"Authorization": f"Bearer {key}"}).status_code == 401

    # -- event webhook: the secret write-only, kept when left empty on edit
    page.get_by_role("link", name="Event webhooks").click()
    page.get_by_role("link", name="New event webhook").click()
    page.get_by_label("Name", exact=True).fill("crm")
    page.get_by_label("URL", exact=True).fill("https://crm.example.com/herald")
    page.get_by_label("Signing secret").fill(HOOK_SECRET)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Event webhook saved.")
    page.get_by_label("message.read").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Event webhook saved.")
    hook = live.client.get("/v1/event-webhooks/crm").json()
    assert "message.read" in hook["events"]

    # -- user: look up, edit
    page.get_by_role("link", name="Users").click()
    page.get_by_label("User id").fill("alice")
    page.get_by_label("User id").press("Enter")
    expect(page.locator("main")).to_contain_text("alice@example.com")
    page.locator("#user-tags").fill("vip, beta")
    page.locator("#user-form").get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("User saved.")
    assert live.client.get("/v1/users/alice").json()["tags"] == ["vip", "beta"]

    en = shoot(bp, live.url, "en")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    zh = shoot(bp, live.url, "zh-CN")
    assert all(p.stat().st_size > 5000 for p in en + zh)


def test_a_viewer_sees_users_but_no_admin_page(live: LiveHerald, browser_page: Any) -> None:
    account(live, "watcher", Role.VIEWER)
    hostile = '<img src=x onerror="window.__xss=1">'
    r = live.client.put("/v1/users/bob", json={"name": hostile})
    assert r.status_code == 200, r.text
    bp = browser_page(live.url + "/console/login", locale="en")
    page = bp.page
    log_in_with_the_keyboard(bp, "watcher")
    nav = page.locator("nav.side")
    expect(nav).to_contain_text("Users")
    for hidden in ("Channel accounts", "API keys", "Event webhooks"):
        expect(nav).not_to_contain_text(hidden)
    page.goto(live.url + "/console/users?id=bob")
    expect(page.locator("h2.subject-name")).to_contain_text(hostile)
    assert page.evaluate("window.__xss") is None and page.locator("img[src=x]").count() == 0
    assert page.locator("#user-form").count() == 0
    page.goto(live.url + "/console/api-keys")
    expect(page.locator("main h1")).not_to_have_text("API keys")
    bp.shot("viewer-user")
