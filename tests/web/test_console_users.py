"""The console's user pages over HTTP on SQLite and PostgreSQL: a viewer looks a user up and sees the
profile, preferences, unread count and recent deliveries, and cannot change anything; an operator
edits the profile (bad input named next to its field, kept) and deletes the user; changes audited;
hostile ids and names render as text."""

from __future__ import annotations

import pytest
from markupsafe import escape

from herald.core.console import Role
from herald.store import users as user_store
from tests.conftest import Harness
from tests.web.console_support import audit_rows, logged_in

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>'


async def user_of(harness: Harness, user_id: str) -> dict[str, object] | None:
    async with harness.herald.db.read() as conn:
        return await user_store.get_user(conn, user_id)


async def make_user(harness: Harness, user_id: str, **fields: object) -> None:
    """Through the store: ids with slashes are the business system's own and cannot go in a URL path."""
    async with harness.herald.db.write() as conn:
        await user_store.upsert_user(conn, user_id, {"email": "ada@example.com", "tags": ["vip", "beta"], **fields})


async def test_a_viewer_sees_a_users_profile_inbox_and_deliveries(harness: Harness) -> None:
    await make_user(harness, "u-ada", name="Ada", channels={"wechat_oa_openid": "oA1"})
    await harness.put_type(
        "order.shipped",
        ["inapp", "email"],
        {"inapp": {"title": "t", "body": "b"}, "email": {"title": "t", "body": "b"}},
    )
    r = await harness.trigger({"type": "order.shipped", "to": ["u-ada"], "data": {}})
    assert r.status_code == 202, r.text
    ntf = r.json()["id"]
    await harness.drain()
    await logged_in(harness.client, harness.herald, "val", Role.VIEWER)

    page = await harness.client.get("/console/users?id=u-ada", headers={"Accept-Language": "en"})
    assert page.status_code == 200, page.text
    text = page.text
    assert "ada@example.com" in text and "vip" in text and "oA1" in text
    assert '<dd id="user-unread">1</dd>' in text
    assert f'href="/console/trace?id={ntf}"' in text
    assert "The user has saved no preferences" in text
    assert 'action="/console/users/edit"' not in text  # a viewer gets no form

    missing = await harness.client.get("/console/users?id=nobody", headers={"Accept-Language": "en"})
    assert missing.status_code == 404 and "No user with the id nobody." in missing.text


async def test_an_operator_edits_and_deletes_a_user_each_audited(harness: Harness) -> None:
    await make_user(harness, "u/with/slashes")
    client = harness.client
    csrf = await logged_in(client, harness.herald, "otto", Role.OPERATOR)
    form = {
        "csrf_token": csrf,
        "id": "u/with/slashes",
        "name": HOSTILE,
        "email": "new@example.com",
        "phone": "",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
        "tags": "gold, beta",
        "channels": "{}",
        "data": '{"level": 3}',
    }
    r = await client.post("/console/users/edit", data=form)
    assert r.status_code == 303, r.text
    user = await user_of(harness, "u/with/slashes")
    assert user is not None
    assert (user["name"], user["email"], user["timezone"]) == (HOSTILE, "new@example.com", "Asia/Shanghai")
    assert user["tags"] == ["gold", "beta"] and user["data"] == {"level": 3}
    page = await client.get(r.headers["location"])
    assert page.status_code == 200 and HOSTILE not in page.text and str(escape(HOSTILE)) in page.text

    bad = {**form, "email": "not an address", "timezone": "Mars/Base", "data": "{oops"}
    r = await client.post("/console/users/edit", data=bad)
    assert r.status_code == 422
    assert 'id="err-data"' in r.text  # JSON first: the profile is checked once it parses
    r = await client.post("/console/users/edit", data={**bad, "data": "{}"})
    assert r.status_code == 422 and 'id="err-email"' in r.text and 'id="err-timezone"' in r.text
    assert 'value="not an address"' in r.text  # what was typed is kept
    assert (await user_of(harness, "u/with/slashes"))["email"] == "new@example.com"  # type: ignore[index]

    r = await client.post("/console/users/delete", data={"csrf_token": csrf, "id": "u/with/slashes"})
    assert r.status_code == 303 and await user_of(harness, "u/with/slashes") is None
    r = await client.post("/console/users/delete", data={"csrf_token": csrf, "id": "u/with/slashes"})
    assert r.status_code == 404

    actions = [(a, t, d) for _, a, t, d in await audit_rows(harness.herald) if a.startswith("user.")]
    assert [(a, t) for a, t, _ in actions] == [("user.update", "u/with/slashes"), ("user.delete", "u/with/slashes")]
    assert set(actions[0][2]["fields"]) >= {"name", "email", "tags", "data"}  # type: ignore[arg-type]


async def test_a_hostile_user_id_renders_as_text(harness: Harness) -> None:
    await make_user(harness, HOSTILE)
    await logged_in(harness.client, harness.herald, "val", Role.VIEWER)
    page = await harness.client.get("/console/users", params={"id": HOSTILE})
    assert page.status_code == 200
    assert HOSTILE not in page.text and str(escape(HOSTILE)) in page.text
    for odd in ("%00", "%ED%A0%80", "x" * 5000):  # a NUL, a lone surrogate as UTF-8 bytes, too long
        r = await harness.client.get(f"/console/users?id={odd}")
        assert r.status_code == (422 if odd == "%00" else 404), (odd[:9], r.status_code)  # NUL: refused app-wide
        assert "<script>" not in r.text


@pytest.mark.parametrize("action", ["edit", "delete"])
async def test_a_viewer_cannot_change_a_user(harness: Harness, action: str) -> None:
    await make_user(harness, "u-kept")
    csrf = await logged_in(harness.client, harness.herald, "val", Role.VIEWER)
    r = await harness.client.post(
        f"/console/users/{action}", data={"csrf_token": csrf, "id": "u-kept", "name": "changed", "tags": ""}
    )
    assert r.status_code == 403
    user = await user_of(harness, "u-kept")
    assert user is not None and user["name"] is None and user["tags"] == ["vip", "beta"]
    assert not [a for _, a, _, _ in await audit_rows(harness.herald) if a.startswith("user.")]
