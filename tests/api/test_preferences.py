"""GET/PUT /v1/me/preferences and /v1/users/{id}/preferences: the document, the catalogue, the
errors, and that nobody reaches another user's preferences."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from herald.store.tables import inapp_choices, user_preferences
from tests.conftest import Harness

DOCUMENT = {
    "channels": {"email": False},
    "categories": {"announcement": {"enabled": False}, "reminder": {"channels": {"sms": False}}},
    "types": {"comment.created": {"enabled": False}, "order.shipped": {"channels": {"email": False}}},
    "quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "Asia/Shanghai"},
}


async def setup_types(h: Harness) -> None:
    await h.put_type(
        "order.shipped",
        ["inapp", "email"],
        {"inapp": {"title": "t"}, "email": {"title": "t", "body": "b"}},
        name="Order shipped",
        names={"zh-CN": "订单已发货", "en": "Order shipped"},
    )
    await h.put_type("comment.created", ["inapp"], {"inapp": {"title": "t"}}, quiet_hours="drop")
    await h.put_type("login.alert", ["inapp", "sms"], {"inapp": {"title": "t"}, "sms": {"text": "t"}}, critical=True)


async def me(h: Harness, user: str) -> dict[str, Any]:
    r = await h.client.get("/v1/me/preferences", headers=h.user(user))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def put_me(h: Harness, user: str, document: Any) -> Any:
    return await h.client.put("/v1/me/preferences", json=document, headers=h.user(user))


def document_of(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: answer[k] for k in ("channels", "categories", "types", "quiet_hours")}


async def test_a_new_user_has_an_empty_document_and_the_catalogue(harness: Harness) -> None:
    await setup_types(harness)
    await harness.client.put("/v1/users/u1", json={"locale": "en", "timezone": "Europe/Paris"}, headers=harness.admin())
    answer = await me(harness, "u1")
    assert document_of(answer) == {"channels": {}, "categories": {}, "types": {}, "quiet_hours": None}
    assert answer["updated_at"] is None
    catalogue = answer["catalogue"]
    assert catalogue["timezone"] == "Europe/Paris"
    assert [c["key"] for c in catalogue["categories"]] == ["reminder", "announcement", "direct"]
    assert catalogue["categories"][0]["name"] == "Reminders"
    assert catalogue["categories"][0]["names"] == {"zh-CN": "系统提醒", "en": "Reminders"}
    types = {t["key"]: t for t in catalogue["types"]}
    assert set(types) == {"order.shipped", "comment.created", "login.alert"}
    assert types["order.shipped"] == {
        "key": "order.shipped",
        "name": "Order shipped",
        "names": {"zh-CN": "订单已发货", "en": "Order shipped"},
        "category": "reminder",
        "channels": ["inapp", "email"],
        "critical": False,
        "quiet_hours": "defer",
    }
    assert types["login.alert"]["critical"] is True and types["comment.created"]["quiet_hours"] == "drop"
    assert {c["key"] for c in catalogue["channels"]} == {"inapp", "email", "sms"}
    # the same user in Chinese gets the Chinese names; with no timezone anywhere, the deployment's
    await harness.client.put("/v1/users/u2", json={"locale": "zh-CN"}, headers=harness.admin())
    chinese = await me(harness, "u2")
    assert {t["key"]: t["name"] for t in chinese["catalogue"]["types"]}["order.shipped"] == "订单已发货"
    assert chinese["catalogue"]["categories"][0]["name"] == "系统提醒"
    assert chinese["catalogue"]["timezone"] == "UTC"


async def test_put_replaces_the_document_and_get_returns_it(harness: Harness) -> None:
    await setup_types(harness)
    r = await put_me(harness, "u1", DOCUMENT)
    assert r.status_code == 200, r.text
    assert document_of(r.json()) == DOCUMENT and r.json()["updated_at"] is not None
    answer = await me(harness, "u1")
    assert document_of(answer) == DOCUMENT
    assert answer["catalogue"]["timezone"] == "Asia/Shanghai"  # the quiet hours' own
    # replaced, not merged
    r = await put_me(harness, "u1", {"types": {"order.shipped": {"enabled": False}}})
    assert r.status_code == 200, r.text
    assert document_of(await me(harness, "u1")) == {
        "channels": {},
        "categories": {},
        "types": {"order.shipped": {"enabled": False}},
        "quiet_hours": None,
    }


async def test_what_get_answers_can_be_put_back_as_it_is(harness: Harness) -> None:
    await setup_types(harness)
    assert (await put_me(harness, "u1", DOCUMENT)).status_code == 200
    answer = await me(harness, "u1")
    r = await put_me(harness, "u1", answer)  # catalogue and updated_at are read-only: ignored
    assert r.status_code == 200, r.text
    assert document_of(r.json()) == DOCUMENT


async def test_nulls_and_empty_settings_mean_not_set(harness: Harness) -> None:
    r = await put_me(harness, "u1", {"channels": {"email": None}, "types": {"a.b": {}}, "quiet_hours": None})
    assert r.status_code == 200, r.text
    assert document_of(r.json()) == {"channels": {}, "categories": {}, "types": {}, "quiet_hours": None}


async def test_bad_documents_are_422_naming_each_field(harness: Harness) -> None:
    bad = {
        "channels": {"fax": False, "email": "off"},
        "categories": {"marketing": {"enabled": False}, "reminder": {"channels": {"pigeon": False}}},
        "types": {"order.shipped": {"enabled": 1, "mute": True}},
        "quiet_hours": {"start": "25:00", "end": "08:00", "timezone": "Mars/Olympus"},
        "colour": "blue",
    }
    r = await put_me(harness, "u1", bad)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert set(fields) == {
        "channels.fax",
        "channels.email",
        "categories.marketing",
        "categories.reminder.channels.pigeon",
        "types.order.shipped.enabled",
        "types.order.shipped.mute",
        "quiet_hours.start",
        "quiet_hours.timezone",
        "colour",
    }
    assert "unknown channel 'fax'" in fields["channels.fax"]
    assert "25:00" in fields["quiet_hours.start"]
    # nothing was stored
    assert document_of(await me(harness, "u1"))["channels"] == {}
    for body, field in [
        ([1, 2], "body"),
        ("text", "body"),
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "22:00", "end": "7:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "../../etc/passwd"}}, "quiet_hours.timezone"),
        ({"types": {"bad key": {"enabled": False}}}, "types.bad key"),
        ({"types": {f"t{i}": {"enabled": False} for i in range(1001)}}, "types"),
        ({"channels": "email"}, "channels"),
    ]:
        r = await put_me(harness, "u1", body)
        assert r.status_code == 422, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.text)


async def test_hostile_text_is_refused_at_the_door(harness: Harness) -> None:
    for body in (
        b'{"types": {"a\\u0000b": {"enabled": false}}}',
        b'{"types": {"\\ud800": {"enabled": false}}}',
        b'{"quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "Asia/Shang\\u0000hai"}}',
    ):
        r = await harness.client.put(
            "/v1/me/preferences",
            content=body,
            headers={**harness.user("u1"), "Content-Type": "application/json"},
        )
        assert r.status_code == 422, r.text
    r = await harness.client.put(
        "/v1/me/preferences", content=b"{", headers={**harness.user("u1"), "Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text


async def test_a_user_reaches_only_their_own_preferences(harness: Harness) -> None:
    await setup_types(harness)
    assert (await put_me(harness, "u1", DOCUMENT)).status_code == 200
    # u2 sees their own (empty) document, and their save leaves u1's alone
    assert document_of(await me(harness, "u2"))["types"] == {}
    assert (await put_me(harness, "u2", {"channels": {"sms": False}})).status_code == 200
    assert document_of(await me(harness, "u1")) == DOCUMENT
    # the admin paths are not for user tokens, whichever user they name
    for user in ("u1", "u2"):
        r = await harness.client.get(f"/v1/users/{user}/preferences", headers=harness.user("u2"))
        assert r.status_code == 401, r.text
        r = await harness.client.put(f"/v1/users/{user}/preferences", json={}, headers=harness.user("u2"))
        assert r.status_code == 401, r.text
    # nor for keys without the admin scope
    r = await harness.client.get("/v1/users/u1/preferences", headers=harness.sender())
    assert r.status_code == 403, r.text
    r = await harness.client.put("/v1/users/u1/preferences", json={}, headers=harness.reader())
    assert r.status_code == 403, r.text
    assert document_of(await me(harness, "u1")) == DOCUMENT
    # and no credentials at all
    assert (await harness.client.get("/v1/me/preferences")).status_code == 401


async def test_admins_read_and_write_a_users_preferences_in_the_same_shape(harness: Harness) -> None:
    await setup_types(harness)
    r = await harness.client.get("/v1/users/u1/preferences", headers=harness.admin())
    assert r.status_code == 404, r.text  # no such user
    r = await harness.client.put("/v1/users/u1/preferences", json=DOCUMENT, headers=harness.admin())
    assert r.status_code == 200, r.text  # the user is created
    r = await harness.client.get("/v1/users/u1/preferences", headers=harness.admin())
    assert r.status_code == 200, r.text
    mine = await me(harness, "u1")
    assert r.json() == mine
    assert (await harness.client.get("/v1/users/u1", headers=harness.reader())).status_code == 200
    r = await harness.client.put("/v1/users/u1/preferences", json={"channels": {"fax": True}}, headers=harness.admin())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "channels.fax", r.text


async def test_erasing_a_user_erases_their_preferences(harness: Harness) -> None:
    await setup_types(harness)
    doc = {"channels": {"inapp": False}}
    assert (await harness.client.put("/v1/users/u1/preferences", json=doc, headers=harness.admin())).status_code == 200
    assert (await harness.client.delete("/v1/users/u1", headers=harness.admin())).status_code == 204
    assert (await harness.client.get("/v1/users/u1/preferences", headers=harness.admin())).status_code == 404
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(user_preferences).where(user_preferences.c.user_id == "u1"))).first() is None
        assert (await conn.execute(select(inapp_choices).where(inapp_choices.c.user_id == "u1"))).first() is None
    await harness.client.put("/v1/users/u1", json={"name": "again"}, headers=harness.admin())
    assert document_of(await me(harness, "u1"))["channels"] == {}


async def test_concurrent_saves_leave_one_whole_document_and_its_index(harness: Harness) -> None:
    documents = [
        {"channels": {"inapp": i % 2 == 0}, "types": {f"t.{i}": {"channels": {"inapp": False}}}} for i in range(12)
    ]
    answers = await asyncio.gather(*(put_me(harness, "u1", d) for d in documents))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    final = document_of(await me(harness, "u1"))
    chosen = next(d for d in documents if d["types"] == final["types"])
    assert final["channels"] == chosen["channels"]
    async with harness.herald.db.read() as conn:
        rows = (await conn.execute(select(inapp_choices.c.scope).where(inapp_choices.c.user_id == "u1"))).all()
    scopes = {scope for (scope,) in rows}
    assert next(iter(chosen["types"])) in {s.removeprefix("type:") for s in scopes}, scopes
    assert len([s for s in scopes if s.startswith("type:")]) == 1, scopes


async def test_notification_types_carry_names_per_locale(harness: Harness) -> None:
    await setup_types(harness)
    r = await harness.client.get("/v1/notification-types/order.shipped", headers=harness.reader())
    assert r.json()["names"] == {"zh-CN": "订单已发货", "en": "Order shipped"}
    r = await harness.client.get("/v1/notification-types/comment.created", headers=harness.reader())
    assert r.json()["names"] == {}
    r = await harness.client.put(
        "/v1/notification-types/x.y", json={"names": {"not a locale!": "x"}}, headers=harness.admin()
    )
    assert r.status_code == 422, r.text
    r = await harness.client.put("/v1/notification-types/x.y", json={"names": {"en": ""}}, headers=harness.admin())
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("names"), r.text
