"""The console's Send page over HTTP on SQLite and PostgreSQL: a preview of what each channel would
send first, then the trigger exactly as POST /v1/notifications, audited, and the notification found in
the trace with its deliveries; only what was previewed is sent; mistakes named next to their field
with the input kept; a viewer cannot send; hostile data renders as text."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import func, select

from herald.core.console import Role
from herald.store.tables import notifications
from tests.conftest import Harness
from tests.web.console_support import audit_rows, logged_in, page_csrf

EN = {"Accept-Language": "en"}
PREVIEWED = re.compile(r'name="previewed" value="([0-9a-f]*)"')


def form(**fields: str) -> dict[str, str]:
    return {
        "type": "order.shipped",
        "mode": "users",
        "users": "u1,\nu2",
        "tags": "",
        "data": '{"order": "A-17"}',
        "channels": "",
        "send_at": "",
        "cancellation_key": "",
        **fields,
    }


async def order_type(harness: Harness) -> None:
    await harness.put_type(
        "order.shipped",
        ["inapp", "webhook"],
        {"inapp": {"title": "Order ${order} shipped", "body": "On its way"}, "webhook": {"title": "t", "body": "b"}},
    )


async def preview(harness: Harness, token: str, **fields: str) -> tuple[str, str]:
    r = await harness.client.post(
        "/console/send", data={**form(**fields), "action": "preview", "csrf_token": token}, headers=EN
    )
    assert r.status_code == 200, r.text
    found = PREVIEWED.search(r.text)
    assert found and found.group(1), r.text
    return r.text, found.group(1)


async def test_preview_then_send_and_find_it_in_the_trace_with_its_deliveries(harness: Harness) -> None:
    await order_type(harness)
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    page, digest = await preview(harness, token)
    assert "Order A-17 shipped" in page
    assert 'data-channel="inapp"' in page and 'data-channel="webhook"' in page
    async with harness.herald.db.read() as conn:  # a preview sends nothing
        assert (await conn.execute(select(func.count()).select_from(notifications))).scalar_one() == 0

    r = await harness.client.post(
        "/console/send", data={**form(), "action": "send", "previewed": digest, "csrf_token": token}
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    found = re.search(r"/console/trace\?id=(ntf_[^&]+)", location)
    assert found, location
    ntf = found.group(1)
    await harness.drain()

    api = await harness.client.get(f"/v1/notifications/{ntf}", headers=harness.reader())
    assert api.status_code == 200
    assert api.json()["type"] == "order.shipped" and api.json()["recipients"] == 2
    trace = await harness.client.get(location, headers=EN)
    assert trace.status_code == 200
    assert "Accepted." in trace.text
    for delivery in api.json()["deliveries"]:
        assert delivery["id"] in trace.text
    assert trace.text.count('class="event status-') == len(api.json()["deliveries"]) == 4
    inbox = await harness.client.get("/v1/me/inbox", headers=harness.user("u2"))
    assert [i["title"] for i in inbox.json()["items"]] == ["Order A-17 shipped"]
    sends = [
        (a, action, target, d)
        for a, action, target, d in await audit_rows(harness.herald)
        if action == "notification.send"
    ]
    assert sends == [
        ("olga", "notification.send", ntf, {"type": "order.shipped", "recipients": 2, "status": "accepted"})
    ]


async def test_a_form_changed_after_its_preview_is_previewed_again_not_sent(harness: Harness) -> None:
    await order_type(harness)
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    _, digest = await preview(harness, token)
    r = await harness.client.post(
        "/console/send",
        data={**form(data='{"order": "B-2"}'), "action": "send", "previewed": digest, "csrf_token": token},
        headers=EN,
    )
    assert r.status_code == 200 and "Order B-2 shipped" in r.text
    assert [a for a in await audit_rows(harness.herald) if a[1] == "notification.send"] == []


async def test_an_audience_by_tag_with_a_cancellation_key_and_only_some_channels(harness: Harness) -> None:
    await order_type(harness)
    for user in ("t1", "t2"):
        r = await harness.client.put(f"/v1/users/{user}", json={"tags": ["vip"]}, headers=harness.admin())
        assert r.status_code in (200, 201), r.text
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    fields = {"mode": "tags", "tags": "vip", "channels": "inapp", "cancellation_key": "promo-1"}
    page, digest = await preview(harness, token, **fields)
    assert 'data-channel="webhook"' not in page
    r = await harness.client.post(
        "/console/send", data={**form(**fields), "action": "send", "previewed": digest, "csrf_token": token}
    )
    assert r.status_code == 303, r.text
    ntf = re.search(r"id=(ntf_[^&]+)", r.headers["location"]).group(1)  # type: ignore[union-attr]
    await harness.drain()
    api = (await harness.client.get(f"/v1/notifications/{ntf}", headers=harness.reader())).json()
    assert api["channels"] == ["inapp"] and api["cancellation_key"] == "promo-1"
    inbox = await harness.client.get("/v1/me/inbox", headers=harness.user("t1"))
    assert [i["title"] for i in inbox.json()["items"]] == ["Order A-17 shipped"]


async def test_mistakes_are_named_next_to_their_field_and_the_input_is_kept(harness: Harness) -> None:
    await order_type(harness)
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    cases = {
        "data": form(data="{not json", users="kept-user"),
        "users": form(users=" , "),
        "type": form(type="no.such.type"),
        "send_at": form(send_at="yesterday-ish"),
        "tags": form(mode="tags", tags=""),
    }
    for field, data in cases.items():
        r = await harness.client.post(
            "/console/send", data={**data, "action": "preview", "csrf_token": token}, headers=EN
        )
        assert r.status_code == 422, (field, r.text)
        assert f'id="err-{field}"' in r.text, (field, r.text)
    r = await harness.client.post(
        "/console/send", data={**cases["data"], "action": "preview", "csrf_token": token}, headers=EN
    )
    assert "kept-user" in r.text and "{not json" in r.text
    # a channel the type does not have: named by the trigger when sending
    page, digest = await preview(harness, token, channels="sms")
    assert 'data-channel="sms"' in page
    r = await harness.client.post(
        "/console/send",
        data={**form(channels="sms"), "action": "send", "previewed": digest, "csrf_token": token},
        headers=EN,
    )
    assert r.status_code == 422 and 'id="err-channels"' in r.text, r.text
    for data in ('{"a": "\\u0000"}', "[" * 100_000, "1"):
        r = await harness.client.post(
            "/console/send", data={**form(data=data), "action": "preview", "csrf_token": token}
        )
        assert r.status_code == 422, r.text


async def test_a_viewer_cannot_send_and_hostile_data_renders_as_text(harness: Harness) -> None:
    await order_type(harness)
    token = await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    assert (await harness.client.get("/console/send")).status_code == 403
    r = await harness.client.post("/console/send", data={**form(), "action": "send", "csrf_token": token})
    assert r.status_code == 403
    assert "/console/send" not in (await harness.client.get("/console")).text
    await harness.client.post("/console/logout", data={"csrf_token": token})

    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    page, _ = await preview(harness, token, data=f'{{"order": "{hostile.replace(chr(34), chr(92) + chr(34))}"}}')
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert str(escape(f"Order {hostile} shipped")) in page
    listed = await harness.client.get("/console/send?type=%3Cb%3E", headers=EN)
    assert "<b>" not in listed.text.split("<main", 1)[1]


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)  # a form is UTF-8
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
).map(json.dumps)


@FUZZ
@given(
    type_key=st.one_of(st.just("order.shipped"), any_text),
    mode=st.one_of(st.sampled_from(["users", "all", "tags"]), any_text),
    users=any_text,
    data=st.one_of(any_json, any_text),
    channels=any_text,
    send_at=any_text,
    action=st.sampled_from(["preview", "send"]),
)
async def test_any_send_form_is_previewed_sent_or_refused_never_a_5xx(
    harness: Harness, type_key: str, mode: str, users: str, data: str, channels: str, send_at: str, action: str
) -> None:
    if not harness.client.cookies.get("herald_console"):
        await order_type(harness)
        await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    token = await page_csrf(harness.client, "/console/send")
    fields = form(type=type_key, mode=mode, users=users, data=data, channels=channels, send_at=send_at)
    r = await harness.client.post("/console/send", data={**fields, "action": "preview", "csrf_token": token})
    assert r.status_code in (200, 400, 422), (r.status_code, r.text[:300])
    assert "<script" not in r.text.lower().replace("<script src=", "")
    found = PREVIEWED.search(r.text)
    if action == "send" and r.status_code == 200 and found and found.group(1):
        sent = await harness.client.post(
            "/console/send", data={**fields, "action": "send", "previewed": found.group(1), "csrf_token": token}
        )
        assert sent.status_code in (303, 422), (sent.status_code, sent.text[:300])
