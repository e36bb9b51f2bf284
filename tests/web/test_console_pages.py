"""The console's pages over HTTP on SQLite and PostgreSQL: the dashboard's figures, console accounts
(each change audited, without secrets), the audit log's filters and pages, the trace."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from herald.core.console import Role
from herald.store import console as console_store
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.web.console_support import (
    audit_rows,
    csrf_of,
    logged_in,
    login,
    make_account,
    page_csrf,
    session_count,
)

NEW = {"username": "carol", "role": "operator", "password": "a long password", "confirm": "a long password"}


def cells(html: str, css_class: str) -> list[str]:
    """The text of each tile of the dashboard: "<n> <label>"."""
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m)).strip()
        for m in re.findall(rf'<li class="tile[^"]*{css_class}[^"]*">(.*?)</li>', html, re.S)
    ]


# -- dashboard ------------------------------------------------------------------------------------------


async def test_the_dashboard_counts_the_last_day_and_links_failures_to_their_trace(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook", "email"], {"email": {"title": "t", "body": "b"}})
    r = await harness.trigger({"type": "order.shipped", "to": ["u1", "u2"], "data": {}})
    assert r.status_code == 202, r.text
    ntf = r.json()["id"]
    # the webhook deliveries have used every attempt: the worker fails them; email has no account
    async with harness.herald.db.write() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.channel == "webhook")
            .values(attempts=harness.herald.settings.max_attempts)
        )
    await harness.drain()
    # a failure older than the window is not counted
    old = await harness.trigger({"type": "order.shipped", "to": ["u3"], "data": {}, "channels": ["webhook"]})
    async with harness.herald.db.write() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.notification_id == old.json()["id"])
            .values(status="failed", updated_at=utcnow() - timedelta(hours=25))
        )

    await logged_in(harness.client, harness.herald, "alice", Role.VIEWER)
    page = await harness.client.get("/console", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.text
    assert cells(html, "status-failed") == ["2 failed"]
    assert cells(html, "status-skipped") == ["2 skipped"]
    assert '<th scope="row">webhook</th>' in html and '<th scope="row">email</th>' in html
    assert "<code>attempts_exhausted</code>" in html and "<code>no_account</code>" in html
    assert html.count(f'href="/console/trace?id={ntf}"') == 2
    assert old.json()["id"] not in html

    trace = await harness.client.get(f"/console/trace?id={ntf}")
    assert trace.status_code == 200
    assert trace.text.count('class="event status-failed"') == 2
    assert trace.text.count('class="event status-skipped"') == 2
    assert "gave up" in trace.text  # the reason's words, as GET /v1/notifications/{id} has them


async def test_the_dashboard_shows_the_queue(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    await harness.trigger({"type": "order.shipped", "to": ["u1", "u2", "u3"], "data": {}})
    async with harness.herald.db.write() as conn:
        await conn.execute(update(deliveries).values(next_attempt_at=utcnow() - timedelta(minutes=5)))
    await logged_in(harness.client, harness.herald, "alice", Role.VIEWER)
    html = (await harness.client.get("/console")).text
    tiles = cells(html, "")
    assert any(t.startswith("3 ") for t in tiles), tiles  # due now
    assert any(re.match(r"^5 (min|分钟) ", t) for t in tiles), tiles  # the oldest due has waited 5 minutes


async def test_an_empty_dashboard_says_so(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice", Role.VIEWER)
    html = (await harness.client.get("/console", headers={"Accept-Language": "en"})).text
    assert "No delivery ended in the last 24 hours." in html and "No failed delivery" in html


async def test_an_unknown_notification_is_a_404_page(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice", Role.VIEWER)
    r = await harness.client.get("/console/trace?id=ntf_nope<b>", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and "No notification ntf_nope&lt;b&gt;." in r.text
    assert (await harness.client.get("/console/trace")).status_code == 200  # the empty search form


# -- console accounts -----------------------------------------------------------------------------------


async def test_an_admin_creates_an_account_who_logs_in_with_its_role(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    r = await harness.client.post("/console/accounts", data={**NEW, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/accounts?notice=notice.account_created"
    listed = await harness.client.get(r.headers["location"], headers={"Accept-Language": "en"})
    assert "Account created." in listed.text and ">carol</a>" in listed.text
    harness.client.cookies.clear()
    assert (await login(harness.client, "carol", "a long password")).status_code == 303
    assert (await harness.client.get("/console/accounts")).status_code == 403  # an operator
    (entry,) = [e for e in await audit_rows(harness.herald) if e[1] == "account.create"]
    actor, _, target, details = entry
    assert (actor, target, details["role"]) == ("alice", "carol", "operator")
    assert "a long password" not in str(await audit_rows(harness.herald))


async def test_a_form_with_mistakes_comes_back_naming_them(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    en = {"Accept-Language": "en"}
    cases = [
        ({"username": ""}, "Username: must not be empty."),
        ({"username": "x" * 65}, "Username: must be at most 64 characters."),
        ({"username": "a\u200bb"}, "Username: must not contain control"),
        ({"role": "root"}, "Role: choose viewer, operator or admin."),
        ({"password": "short", "confirm": "short"}, "Password: must be at least 8 characters."),
        ({"confirm": "another password"}, "Password again: the two passwords differ."),
    ]
    for change, message in cases:
        r = await harness.client.post("/console/accounts", data={**NEW, **change, "csrf_token": token}, headers=en)
        assert r.status_code == 422, change
        assert message in r.text, (change, r.text)
        assert "a long password" not in r.text  # a password is never sent back
    taken = await harness.client.post(
        "/console/accounts", data={**NEW, "username": "alice", "csrf_token": token}, headers=en
    )
    assert taken.status_code == 409 and "exists already" in taken.text
    assert [e[1] for e in await audit_rows(harness.herald)] == ["console.login"]


async def test_disabling_ends_sessions_and_enabling_lets_the_account_back_in(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    bob = await make_account(harness.herald, "bob", Role.VIEWER)
    transport = harness.client._transport
    import httpx

    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as bobs:
        assert (await login(bobs, "bob")).status_code == 303
        assert await session_count(harness.herald) == 2
        r = await harness.client.post(f"/console/accounts/{bob.id}/disable", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"].endswith("notice=notice.account_disabled")
        assert (await bobs.get("/console")).status_code == 303  # to the login page
        assert await session_count(harness.herald) == 1
        bobs.cookies.clear()
        assert (await login(bobs, "bob")).status_code == 401
        r = await harness.client.post(f"/console/accounts/{bob.id}/enable", data={"csrf_token": token})
        assert r.status_code == 303
        assert (await login(bobs, "bob")).status_code == 303
    actions = [(e[1], e[2]) for e in await audit_rows(harness.herald) if e[0] == "alice"]
    assert actions == [("console.login", "alice"), ("account.disable", "bob"), ("account.enable", "bob")]


async def test_an_admin_cannot_disable_themselves(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    async with harness.herald.db.read() as conn:
        me = await console_store.find_account(conn, "alice")
    assert me is not None
    r = await harness.client.post(f"/console/accounts/{me.id}/disable", data={"csrf_token": token})
    assert r.status_code == 409
    assert (await harness.client.get("/console")).status_code == 200


async def test_a_new_password_replaces_the_old_and_ends_the_accounts_sessions(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "alice")
    bob = await make_account(harness.herald, "bob", Role.VIEWER)
    short = await harness.client.post(
        f"/console/accounts/{bob.id}/password", data={"password": "x", "confirm": "x", "csrf_token": token}
    )
    assert short.status_code == 422
    r = await harness.client.post(
        f"/console/accounts/{bob.id}/password",
        data={"password": "bobs new password", "confirm": "bobs new password", "csrf_token": token},
    )
    assert r.status_code == 303
    harness.client.cookies.clear()
    assert (await login(harness.client, "bob")).status_code == 401  # the old one
    assert (await login(harness.client, "bob", "bobs new password")).status_code == 303
    (entry,) = [e for e in await audit_rows(harness.herald) if e[1] == "account.password"]
    assert entry[2] == "bob" and "bobs new password" not in str(entry)


async def test_an_unknown_account_is_a_404_page(harness: Harness) -> None:
    anonymous = await harness.client.get("/console/no/such/page", headers={"Accept-Language": "en"})
    assert anonymous.status_code == 404 and "text/html" in anonymous.headers["content-type"]
    assert "Not found." in anonymous.text and 'href="/console/login"' in anonymous.text
    slash = await harness.client.get("/console/")
    assert slash.status_code == 303 and slash.headers["location"] == "/console"
    token = await logged_in(harness.client, harness.herald, "alice")
    assert (await harness.client.get("/console/accounts/cac_nope")).status_code == 404
    r = await harness.client.post("/console/accounts/cac_nope/disable", data={"csrf_token": token})
    assert r.status_code == 404


# -- the audit log --------------------------------------------------------------------------------------


async def test_the_audit_log_filters_by_who_and_what_and_pages_newest_first(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice")
    async with harness.herald.db.write() as conn:
        for n in range(60):
            await console_store.audit(conn, "cli", "type.update", f"t{n}", {"n": n})
        await console_store.audit(conn, "bob", "type.delete", "<i>x</i>", {"why": "<b>old</b>", "password": "hunter2"})
    first = await harness.client.get("/console/audit")
    assert first.status_code == 200
    targets = re.findall(r"<td>(t\d+|&lt;i&gt;x&lt;/i&gt;)</td>", first.text)
    assert targets[:3] == ["&lt;i&gt;x&lt;/i&gt;", "t59", "t58"] and len(targets) == 50
    assert "hunter2" not in first.text and "[redacted]" in first.text and "<b>old</b>" not in first.text
    older = re.search(r'href="(/console/audit\?[^"]*before=[^"]+)"', first.text)
    assert older
    second = await harness.client.get(older.group(1).replace("&amp;", "&"))
    rest = re.findall(r"<td>(t\d+)</td>", second.text)
    assert rest[0] == "t10" and rest[-1] == "t0" and "console.login" in second.text
    by_bob = await harness.client.get("/console/audit?actor=bob")
    assert re.findall(r"<td><code>([\w.]+)</code></td>", by_bob.text) == ["type.delete"]
    deletes = await harness.client.get("/console/audit?action=type.delete")
    assert re.findall(r"<td>(bob|cli|alice)</td>", deletes.text) == ["bob"]
    assert '<option value="type.update">' in deletes.text  # the filter offers the actions recorded


async def test_the_layout_marks_the_current_page_and_lists_pages_to_come(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "alice")
    html = (await harness.client.get("/console/accounts", headers={"Accept-Language": "en"})).text
    assert '<a href="/console/accounts" aria-current="page">Console accounts</a>' in html
    assert '<a href="/console/types">Types</a>' in html
    assert re.search(
        r'<form method="post" action="/console/logout"><input type="hidden" name="csrf_token" value="[^"]+">', html
    )
    token = csrf_of(html)
    assert token == await page_csrf(harness.client, "/console/audit")  # one token per session


# -- hostile input ----------------------------------------------------------------------------------------

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)  # a form is UTF-8


@FUZZ
@given(username=any_text, role=st.one_of(st.sampled_from(["viewer", "admin"]), any_text))
async def test_any_account_form_is_created_or_refused_never_a_5xx(harness: Harness, username: str, role: str) -> None:
    if not harness.client.cookies.get("herald_console"):
        await logged_in(harness.client, harness.herald, "alice")
    token = await page_csrf(harness.client, "/console/accounts")
    form = {"username": username, "role": role, "password": "a long password", "confirm": "a long password"}
    r = await harness.client.post("/console/accounts", data={**form, "csrf_token": token})
    assert r.status_code in (303, 400, 409, 422), (r.status_code, r.text[:300])
    listed = (await harness.client.get("/console/accounts")).text
    if r.status_code == 303:
        stored = username.strip()
        async with harness.herald.db.read() as conn:
            assert await console_store.find_account(conn, unicodedata.normalize("NFC", stored)) is not None
        if "<" in stored:
            assert html.escape(unicodedata.normalize("NFC", stored), quote=True) in listed
    assert "<script" not in listed.lower().replace("<script src=", "")


@FUZZ
@given(username=any_text, password=any_text)
async def test_any_login_form_is_refused_never_a_5xx(harness: Harness, username: str, password: str) -> None:
    r = await login(harness.client, username, password)
    assert r.status_code in (400, 401, 429), (r.status_code, r.text[:300])
