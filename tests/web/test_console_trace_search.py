"""The console's trace search over HTTP on SQLite and PostgreSQL: a delivery id leads to its
notification's timeline; a user's view (profile, addresses, preferences, their inbox as they see it,
their deliveries); notifications by type and deliveries by status or reason inside a time window, a
page at a time; bad search input named next to its field; hostile strings shown as text; and each
query the search makes walks an index (SQLite's plan)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import event, update

from herald.core.console import Role
from herald.store import trace_search
from herald.store.tables import deliveries, notifications
from herald.store.types import utcnow
from herald.web.console import trace as trace_page
from tests.conftest import Harness
from tests.web.console_support import logged_in

EN = {"Accept-Language": "en"}
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def linked_ids(html: str, prefix: str) -> list[str]:
    return re.findall(rf'href="/console/trace\?id=({prefix}_[^"&]+)"', html)


async def two_types(harness: Harness) -> tuple[str, str]:
    """order.shipped to u1, u2 (in-app + webhook) and news.weekly to u1 (in-app), worked off."""
    await harness.put_type(
        "order.shipped",
        ["inapp", "webhook"],
        {"inapp": {"title": "Order shipped", "body": "b"}, "webhook": {"title": "t", "body": "b"}},
    )
    await harness.put_type("news.weekly", ["inapp"], {"inapp": {"title": "Weekly news", "body": "b"}})
    order = (await harness.trigger({"type": "order.shipped", "to": ["u1", "u2"], "data": {}})).json()["id"]
    news = (await harness.trigger({"type": "news.weekly", "to": ["u1"], "data": {}})).json()["id"]
    await harness.drain()
    return order, news


async def test_a_delivery_id_leads_to_its_notifications_timeline(harness: Harness) -> None:
    order, _ = await two_types(harness)
    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    api = (await harness.client.get(f"/v1/notifications/{order}", headers=harness.reader())).json()
    webhook = next(d for d in api["deliveries"] if d["channel"] == "webhook")
    page = await harness.client.get(f"/console/trace?id={webhook['id']}", headers=EN)
    assert page.status_code == 200
    assert f"<code>{order}</code>" in page.text
    assert f'<code class="highlight" aria-current="true">{webhook["id"]}</code>' in page.text
    missing = await harness.client.get("/console/trace?id=dlv_nope", headers=EN)
    assert missing.status_code == 404


async def test_a_users_view_shows_profile_addresses_preferences_inbox_and_deliveries(harness: Harness) -> None:
    r = await harness.client.put(
        "/v1/users/u1", json={"name": HOSTILE, "email": "u1@example.com", "tags": ["vip"]}, headers=harness.admin()
    )
    assert r.status_code in (200, 201), r.text
    r = await harness.client.put(
        "/v1/users/u1/preferences", json={"channels": {"email": False}}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    order, _ = await two_types(harness)
    r = await harness.client.post(
        "/v1/announcements", json={"title": "Public notice", "kind": "notice"}, headers=harness.admin()
    )
    assert r.status_code == 201
    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)

    page = await harness.client.get("/console/trace?user=u1", headers=EN)
    assert page.status_code == 200, page.text
    html = page.text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert str(escape(HOSTILE)) in html
    assert "u1@example.com" in html and "vip" in html
    assert '"email": false' in html  # the stored preferences, as JSON (tojson escapes < > & \')
    inbox = await harness.client.get("/v1/me/inbox", headers=harness.user("u1"))
    titles = [i["title"] for i in inbox.json()["items"]]
    assert set(titles) == {"Order shipped", "Weekly news", "Public notice"}
    for title in titles:
        assert f"<strong>{title}</strong>" in html
    # their deliveries: the webhook line of the order (in-app items are in the inbox above)
    api = (await harness.client.get(f"/v1/notifications/{order}", headers=harness.reader())).json()
    mine = [d["id"] for d in api["deliveries"] if d["user_id"] == "u1" and d["channel"] == "webhook"]
    assert mine and set(mine) <= set(linked_ids(html, "dlv"))
    others = [d["id"] for d in api["deliveries"] if d["user_id"] == "u2" and d["id"].startswith("dlv_")]
    assert not set(others) & set(linked_ids(html, "dlv"))

    nobody = await harness.client.get("/console/trace?user=nobody", headers=EN)
    assert nobody.status_code == 200 and "No profile stored" in nobody.text
    # an announcement for everyone is in anyone's inbox; the others' reminders are not
    assert "<strong>Public notice</strong>" in nobody.text and "Order shipped" not in nobody.text


async def test_notifications_by_type_inside_the_window_a_page_at_a_time(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    order, news = await two_types(harness)
    more = [
        (await harness.trigger({"type": "order.shipped", "to": [f"x{i}"], "data": {}})).json()["id"] for i in range(3)
    ]
    # one order notification from three days ago: outside the default window of 24 hours
    async with harness.herald.db.write() as conn:
        await conn.execute(
            update(notifications).where(notifications.c.id == more[0]).values(created_at=utcnow() - timedelta(days=3))
        )
    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    page = await harness.client.get("/console/trace?type=order.shipped", headers=EN)
    assert page.status_code == 200
    assert linked_ids(page.text, "ntf") == [more[2], more[1], order]
    assert news not in page.text

    since = (utcnow() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    monkeypatch.setattr(trace_page, "PAGE_SIZE", 2)
    first = await harness.client.get(f"/console/trace?type=order.shipped&since={since}", headers=EN)
    assert linked_ids(first.text, "ntf") == [more[2], more[1]]
    link = re.search(r'<a href="([^"]+)" class="next-page">', first.text)
    assert link, first.text
    second = await harness.client.get(link.group(1).replace("&amp;", "&"), headers=EN)
    assert linked_ids(second.text, "ntf") == [order, more[0]]
    assert 'class="next-page"' not in second.text


async def test_a_search_reads_a_bounded_walk_and_the_next_page_goes_further(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    order, _ = await two_types(harness)
    for i in range(3):
        await harness.trigger({"type": "news.weekly", "to": [f"n{i}"], "data": {}})
    monkeypatch.setattr(trace_search, "EXAMINED_CAP", 2)
    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    page = await harness.client.get("/console/trace?type=order.shipped", headers=EN)
    assert linked_ids(page.text, "ntf") == []  # the two newest read are news
    assert "The search stopped after reading 2 entries" in page.text
    seen: list[str] = []
    for _ in range(5):
        link = re.search(r'<a href="([^"]+)" class="next-page">', page.text)
        if not link:
            break
        page = await harness.client.get(link.group(1).replace("&amp;", "&"), headers=EN)
        seen += linked_ids(page.text, "ntf")
    assert seen == [order]


async def test_deliveries_by_status_and_by_reason(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook", "email"], {"email": {"title": "t", "body": "b"}})
    ntf = (await harness.trigger({"type": "order.shipped", "to": ["u1", "u2"], "data": {}})).json()["id"]
    async with harness.herald.db.write() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.channel == "webhook")
            .values(attempts=harness.herald.settings.max_attempts)
        )
    await harness.drain()
    api = (await harness.client.get(f"/v1/notifications/{ntf}", headers=harness.reader())).json()
    failed = {d["id"] for d in api["deliveries"] if d["status"] == "failed"}
    skipped = {d["id"] for d in api["deliveries"] if d["status"] == "skipped"}
    assert len(failed) == 2 and len(skipped) == 2
    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)

    page = await harness.client.get("/console/trace?status=failed", headers=EN)
    assert set(linked_ids(page.text, "dlv")) == failed
    page = await harness.client.get("/console/trace?reason=no_account", headers=EN)
    assert set(linked_ids(page.text, "dlv")) == skipped
    page = await harness.client.get("/console/trace?user=u1&status=skipped", headers=EN)
    assert len(set(linked_ids(page.text, "dlv")) & skipped) == 1 and not set(linked_ids(page.text, "dlv")) & failed
    # a window that ended before they did finds none
    until = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = await harness.client.get(f"/console/trace?status=failed&until={until}", headers=EN)
    assert linked_ids(page.text, "dlv") == [] and "Nothing found." in page.text
    # the queue: pending deliveries
    await harness.trigger({"type": "order.shipped", "to": ["u9"], "data": {}, "channels": ["webhook"]})
    page = await harness.client.get("/console/trace?status=pending", headers=EN)
    assert len(linked_ids(page.text, "dlv")) == 1


async def test_bad_search_input_is_named_next_to_its_field_and_kept(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    cases = {
        "status": "status=bogus&user=kept-user",
        "since": "since=not-a-time",
        "until": "since=2030-01-02T00:00&until=2030-01-01T00:00",
        "type": "type=a.b&status=failed",
        "type ": "type=a.b&user=u1",
    }
    for field, query in cases.items():
        page = await harness.client.get(f"/console/trace?{query}", headers=EN)
        assert page.status_code == 422, (field, page.text)
        assert f'id="err-{field.strip()}"' in page.text, field
    page = await harness.client.get(f"/console/trace?{cases['status']}", headers=EN)
    assert 'value="kept-user"' in page.text
    for query in (
        "user=a%00b",
        "type=" + "x" * 5000,
        "before=garbage&type=a",
        "user=%3Cscript%3Ealert(1)%3C/script%3E",
    ):
        page = await harness.client.get(f"/console/trace?{query}", headers=EN)
        assert page.status_code in (200, 422), (query, page.status_code)
        assert "<script>alert(1)" not in page.text


async def test_each_search_walks_an_index(harness: Harness) -> None:
    """SQLite's plan of every query the search makes reads the tables through an index, never a scan."""
    if not harness.herald.db.is_sqlite:
        return
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    now = utcnow()
    window = {"since": now - timedelta(days=1), "until": now}
    async with harness.herald.db.read() as conn:
        event.listen(conn.sync_connection, "before_cursor_execute", capture)
        await trace_search.deliveries_of_user(conn, "u1", status="failed")
        await trace_search.ended_deliveries(conn, status="failed", reason="x", **window)
        await trace_search.queued_deliveries(conn, status="pending")
        await trace_search.notifications_in(conn, type_key="a.b", **window)
        event.remove(conn.sync_connection, "before_cursor_execute", capture)
        assert len(captured) >= 4
        for statement, parameters in captured:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = " | ".join(str(row[-1]) for row in rows)
            assert not re.search(r"SCAN (deliveries|notifications)(?! USING)", plan), (statement, plan)
            assert "USING" in plan, (statement, plan)


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
any_text = st.text(max_size=60)  # a query string may carry anything, lone surrogates as escapes


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["id", "user", "type", "status", "reason", "since", "until", "before"]),
        st.one_of(any_text, st.sampled_from(["failed", "pending", "2030-01-01T00:00", "ntf_x", "dlv_x"])),
        max_size=4,
    )
)
async def test_any_trace_search_is_answered_never_a_5xx(harness: Harness, fields: dict[str, str]) -> None:
    if not harness.client.cookies.get("herald_console"):
        await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    query = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in fields.items()})
    r = await harness.client.get(f"/console/trace?{query}")
    assert r.status_code in (200, 400, 404, 422), (r.status_code, r.text[:300])
    assert "<script" not in r.text.lower().replace("<script src=", "")
