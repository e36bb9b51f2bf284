"""Bad input is a 4xx problem+json naming the field, never a 500, and it creates nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness

PROBLEM = "application/problem+json"
MIB = 1024 * 1024
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    assert body["type"]
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


def names(body: dict[str, Any], field: str) -> bool:
    """Whether the problem names ``field`` (query parameters may carry a ``query.`` prefix)."""
    return any(f == field or f == f"query.{field}" for f in error_fields(body))


def assert_names(r: httpx.Response, status: int, field: str) -> dict[str, Any]:
    body = assert_problem(r, status)
    assert names(body, field), (field, body)
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    return body


async def inbox_of(harness: Harness, user: str) -> list[dict[str, Any]]:
    r = await harness.client.get("/v1/me/inbox", headers=harness.user(user))
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def assert_nothing_sent(harness: Harness, *users: str) -> None:
    for user in users:
        assert await inbox_of(harness, user) == [], user
        r = await harness.client.get(f"/v1/users/{user}", headers=harness.reader())
        assert r.status_code == 404, f"user {user} was created by a rejected request"


# -- request bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"type": ', b"{type: 1}", b"[1, 2", b'{"to": ["a"],}', b"\xff\xfe{}", b"nul\x00"])
async def test_malformed_json_is_400(harness: Harness, inbox_type: str, raw: bytes) -> None:
    r = await harness.client.post(
        "/v1/notifications", content=raw, headers={**harness.sender(), "Content-Type": "application/json"}
    )
    body = assert_problem(r, 400)
    assert error_fields(body) == ["body"]
    r = await harness.client.put(
        "/v1/users/alice", content=raw, headers={**harness.admin(), "Content-Type": "application/json"}
    )
    assert_problem(r, 400)
    await assert_nothing_sent(harness, "alice")


async def test_a_json_body_that_is_not_an_object_is_422(harness: Harness, inbox_type: str) -> None:
    for raw in ([], "recharge.succeeded", 42, None):
        r = await harness.client.post("/v1/notifications", json=raw, headers=harness.sender())
        assert r.status_code in (400, 422), r.text
        assert_problem(r, r.status_code)


def big_trigger(inbox_type: str, size: int) -> bytes:
    return json.dumps({"type": inbox_type, "to": ["alice"], "data": {"amount": "a" * size}}).encode()


async def test_a_body_over_one_mib_is_413(harness: Harness, inbox_type: str) -> None:
    raw = big_trigger(inbox_type, MIB + 10)
    r = await harness.client.post(
        "/v1/notifications", content=raw, headers={**harness.sender(), "Content-Type": "application/json"}
    )
    assert r.request.headers["content-length"] == str(len(raw))
    assert_problem(r, 413)
    await assert_nothing_sent(harness, "alice")


async def test_a_streamed_body_over_one_mib_is_413(harness: Harness, inbox_type: str) -> None:
    """No Content-Length (chunked): the limit is enforced while reading."""
    raw = big_trigger(inbox_type, MIB + 10)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    r = await harness.client.post(
        "/v1/notifications", content=chunks(), headers={**harness.sender(), "Content-Type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)
    await assert_nothing_sent(harness, "alice")


async def test_a_body_just_under_the_limit_is_read(harness: Harness, inbox_type: str) -> None:
    raw = big_trigger(inbox_type, 1000)
    r = await harness.client.post(
        "/v1/notifications", content=raw, headers={**harness.sender(), "Content-Type": "application/json"}
    )
    assert r.status_code == 202, r.text


# -- trigger ------------------------------------------------------------------------------------------


async def test_too_many_inline_recipients_is_422(harness: Harness, inbox_type: str) -> None:
    to = [f"u{i}" for i in range(10_001)]
    r = await harness.trigger({"type": inbox_type, "to": to, "data": {"amount": "1"}})
    assert_names(r, 422, "to")
    await assert_nothing_sent(harness, "u0", "u10000")


async def test_empty_to_is_422(harness: Harness, inbox_type: str) -> None:
    assert_names(await harness.trigger({"type": inbox_type, "to": [], "data": {"amount": "1"}}), 422, "to")
    assert_names(await harness.trigger({"type": inbox_type, "data": {"amount": "1"}}), 422, "to")


@pytest.mark.parametrize("bad", ["", None, 5, {"id": ""}, {"email": "x@example.com"}, "x" * 201])
async def test_a_bad_recipient_entry_is_422(harness: Harness, inbox_type: str, bad: Any) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice", bad], "data": {"amount": "1"}})
    body = assert_problem(r, 422)
    assert any(f == "to" or f.startswith("to.") for f in error_fields(body)), body
    await assert_nothing_sent(harness, "alice")


async def test_unknown_type_is_422(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger({"type": "no.such.type", "to": ["alice"], "data": {"amount": "1"}})
    assert_names(r, 422, "type")
    r = await harness.trigger({"type": "not a key!", "to": ["alice"], "data": {"amount": "1"}})
    assert_names(r, 422, "type")
    await assert_nothing_sent(harness, "alice")


async def test_unknown_channel_is_422(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, "channels": ["pigeon"]})
    body = assert_problem(r, 422)
    assert any(f.startswith("channels") for f in error_fields(body)), body
    r = await harness.trigger(
        {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, "channels": ["inapp", "pigeon"]}
    )
    assert "channels.1" in error_fields(assert_problem(r, 422))
    await assert_nothing_sent(harness, "alice")


async def test_unknown_channel_on_a_type_is_422(harness: Harness) -> None:
    r = await harness.client.put(
        "/v1/notification-types/t.x", json={"channels": ["inapp", "pigeon"]}, headers=harness.admin()
    )
    assert "channels.1" in error_fields(assert_problem(r, 422))
    assert (await harness.client.get("/v1/notification-types/t.x", headers=harness.reader())).status_code == 404


async def test_missing_template_variable_is_422_and_sends_nothing(harness: Harness, inbox_type: str) -> None:
    for data in ({}, {"amont": "1"}, {"AMOUNT": "1"}):
        r = await harness.trigger({"type": inbox_type, "to": ["alice", "bob"], "data": data})
        body = assert_problem(r, 422)
        assert error_fields(body) == ["data.amount"], body
    await assert_nothing_sent(harness, "alice", "bob")


async def test_missing_nested_template_variable_is_named(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["inapp"], {"inapp": {"title": "Order ${order.id} shipped"}})
    r = await harness.trigger({"type": "order.shipped", "to": ["alice"], "data": {"order": {"number": 1}}})
    body = assert_problem(r, 422)
    assert error_fields(body) == ["data.id"] or error_fields(body) == ["data.order.id"], body
    await assert_nothing_sent(harness, "alice")


@pytest.mark.parametrize(
    "field,value",
    [("send_at", "2030-01-01T09:00:00"), ("expires_at", "2030-01-01T09:00:00"), ("send_at", "tomorrow")],
)
async def test_naive_or_bad_times_are_422(harness: Harness, inbox_type: str, field: str, value: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, field: value})
    assert_names(r, 422, field)
    await assert_nothing_sent(harness, "alice")


async def test_expires_before_send_is_422(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger(
        {
            "type": inbox_type,
            "to": ["alice"],
            "data": {"amount": "1"},
            "send_at": "2030-01-02T00:00:00+08:00",
            "expires_at": "2030-01-01T00:00:00+08:00",
        }
    )
    assert_names(r, 422, "expires_at")


@pytest.mark.parametrize("extra", [{"bogus": 1}, {"recipients": ["alice"]}, {"Type": "x"}])
async def test_unknown_fields_in_a_trigger_are_422(harness: Harness, inbox_type: str, extra: dict[str, Any]) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, **extra})
    assert_names(r, 422, next(iter(extra)))
    await assert_nothing_sent(harness, "alice")


@pytest.mark.parametrize("field,value", [("data", []), ("data", "x"), ("actor", 5), ("target", "o-9"), ("to", "alice")])
async def test_wrongly_typed_trigger_fields_are_422(harness: Harness, inbox_type: str, field: str, value: Any) -> None:
    body = {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, field: value}
    r = await harness.trigger(body)
    assert_names(r, 422, field)
    await assert_nothing_sent(harness, "alice")


@pytest.mark.parametrize(
    "audience",
    [{}, {"all": False}, {"tags": []}, {"tags": [""]}, {"everyone": True}, {"all": "maybe"}, {"tags": "vip"}],
)
async def test_bad_audience_is_422(harness: Harness, inbox_type: str, audience: dict[str, Any]) -> None:
    r = await harness.trigger({"type": inbox_type, "audience": audience, "data": {"amount": "1"}})
    body = assert_problem(r, 422)
    assert any(f.startswith("audience") for f in error_fields(body)), body


# -- enums, ranges, formats --------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [("category", "bogus"), ("priority", "urgent"), ("priority", 1)])
async def test_bad_enum_on_a_type_is_422(harness: Harness, field: str, value: Any) -> None:
    r = await harness.client.put(f"/v1/notification-types/t.{field}", json={field: value}, headers=harness.admin())
    assert_names(r, 422, field)
    assert (await harness.client.get(f"/v1/notification-types/t.{field}", headers=harness.reader())).status_code == 404


@pytest.mark.parametrize(
    "params,field",
    [
        ({"status": "bogus"}, "status"),
        ({"category": "spam"}, "category"),
        ({"archived": "perhaps"}, "archived"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_bad_inbox_query_is_422(harness: Harness, params: dict[str, str], field: str) -> None:
    r = await harness.client.get("/v1/me/inbox", params=params, headers=harness.user("alice"))
    assert_names(r, 422, field)


@pytest.mark.parametrize("path", ["/v1/notification-types", "/v1/announcements"])
@pytest.mark.parametrize("limit", ["0", "101", "-1"])
async def test_bad_limit_on_server_lists_is_422(harness: Harness, path: str, limit: str) -> None:
    assert_names(await harness.client.get(path, params={"limit": limit}, headers=harness.reader()), 422, "limit")


async def test_bad_kind_filter_on_announcements_is_422(harness: Harness) -> None:
    r = await harness.client.get("/v1/announcements", params={"kind": "popup"}, headers=harness.reader())
    assert_names(r, 422, "kind")
    r = await harness.client.get("/v1/announcements", params={"kind": "banner"}, headers=harness.reader())
    assert r.status_code == 200 and r.json()["items"] == []


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Not cursors this API gives, whichever list they are sent to.
BAD_CURSORS = [
    "garbage",
    "!!!!",
    b64(b"\x00\xff\xfe junk"),
    b64(b"not json"),
    b64(b"[1, 2]"),
    b64(b"[]"),
    b64(b"[[]]"),
    b64(b"[" * 150 + b"]" * 150),
]
# Not cursors of a time-ordered list (the inbox, announcements); a type-list cursor is just a key.
BAD_TIME_CURSORS = [
    b64(b'{"a": 1}'),
    b64(b'"x"'),
    b64(b'["yesterday", "itm_1"]'),
    b64(b'["2030-01-01T00:00:00", "itm_1"]'),
    b64(b'["2030-01-01T00:00:00+00:00", 5]'),
    b64(b'["2030-01-01T00:00:00+00:00"]'),
]


@pytest.mark.parametrize("cursor", BAD_CURSORS + BAD_TIME_CURSORS)
async def test_bad_cursor_is_400_naming_cursor(harness: Harness, cursor: str) -> None:
    r = await harness.client.get("/v1/me/inbox", params={"cursor": cursor}, headers=harness.user("alice"))
    assert_names(r, 400, "cursor")
    r = await harness.client.get("/v1/announcements", params={"cursor": cursor}, headers=harness.reader())
    assert_names(r, 400, "cursor")
    if cursor in BAD_CURSORS:
        r = await harness.client.get("/v1/notification-types", params={"cursor": cursor}, headers=harness.reader())
        assert_names(r, 400, "cursor")


@pytest.mark.parametrize("path", ["/v1/notification-types", "/v1/announcements"])
async def test_deeply_nested_cursor_is_refused(harness: Harness, path: str) -> None:
    """A nesting bomb is a 4xx naming the cursor, not a RecursionError."""
    cursor = b64(b"[" * 5000 + b"]" * 5000)
    r = await harness.client.get(path, params={"cursor": cursor}, headers=harness.reader())
    assert r.status_code in (400, 422), r.text
    assert names(assert_problem(r, r.status_code), "cursor")


async def test_a_cursor_holding_a_nul_character_is_400(harness: Harness) -> None:
    """Well-formed, but no id has a NUL: refused on every backend (PostgreSQL cannot even compare it)."""
    cursor = b64(b'["2030-01-01T00:00:00+00:00", "itm_\\u0000"]')
    r = await harness.client.get("/v1/me/inbox", params={"cursor": cursor}, headers=harness.user("alice"))
    assert_names(r, 400, "cursor")
    r = await harness.client.get("/v1/announcements", params={"cursor": cursor}, headers=harness.reader())
    assert_names(r, 400, "cursor")
    key_cursor = b64(b'["a\\u0000"]')
    r = await harness.client.get("/v1/notification-types", params={"cursor": key_cursor}, headers=harness.reader())
    assert_names(r, 400, "cursor")


async def test_an_overlong_inbox_cursor_is_refused(harness: Harness) -> None:
    r = await harness.client.get("/v1/me/inbox", params={"cursor": "a" * 501}, headers=harness.user("alice"))
    assert r.status_code in (400, 422)
    assert names(assert_problem(r, r.status_code), "cursor")


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "+08:00"}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"locale": "english please"}, "locale"),
        ({"tags": "vip"}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_bad_user_fields_are_422(harness: Harness, fields: dict[str, Any], field: str) -> None:
    r = await harness.client.put("/v1/users/alice", json=fields, headers=harness.admin())
    body = assert_problem(r, 422)
    assert any(f == field or f.startswith(f"{field}.") for f in error_fields(body)), body
    assert (await harness.client.get("/v1/users/alice", headers=harness.reader())).status_code == 404


async def test_a_bad_update_leaves_the_user_as_it_was(harness: Harness) -> None:
    r = await harness.client.put("/v1/users/alice", json={"timezone": "Asia/Shanghai"}, headers=harness.admin())
    assert r.status_code == 200
    r = await harness.client.put(
        "/v1/users/alice", json={"timezone": "Nowhere/Land", "name": "A"}, headers=harness.admin()
    )
    assert_names(r, 422, "timezone")
    user = (await harness.client.get("/v1/users/alice", headers=harness.reader())).json()
    assert user["timezone"] == "Asia/Shanghai" and user["name"] is None


# -- announcements ----------------------------------------------------------------------------------


async def list_announcements(harness: Harness) -> list[dict[str, Any]]:
    r = await harness.client.get("/v1/announcements", headers=harness.reader())
    assert r.status_code == 200
    return r.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"title": "t", "kind": "popup"}, "kind"),
        ({"title": "t", "content_type": "video"}, "content_type"),
        ({"title": ""}, "title"),
        ({}, "title"),
        ({"title": "t", "media_url": "javascript:alert(1)"}, "media_url"),
        ({"title": "t", "starts_at": "2030-01-01T00:00:00"}, "starts_at"),
        ({"title": "t", "audience": {"tags": []}}, "audience.tags"),
        ({"title": "t", "audience": {}}, "audience"),
        ({"title": "t", "colour": "red"}, "colour"),
    ],
)
async def test_bad_announcement_is_422(harness: Harness, fields: dict[str, Any], field: str) -> None:
    r = await harness.client.post("/v1/announcements", json=fields, headers=harness.admin())
    assert_names(r, 422, field)
    assert await list_announcements(harness) == []


@pytest.mark.parametrize(
    "starts_at,ends_at",
    [("2030-01-02T00:00:00Z", "2030-01-01T00:00:00Z"), ("2030-01-01T00:00:00Z", "2030-01-01T08:00:00+08:00")],
)
async def test_announcement_ending_before_it_starts_is_422(harness: Harness, starts_at: str, ends_at: str) -> None:
    r = await harness.client.post(
        "/v1/announcements", json={"title": "t", "starts_at": starts_at, "ends_at": ends_at}, headers=harness.admin()
    )
    assert_names(r, 422, "ends_at")
    assert await list_announcements(harness) == []


async def test_patching_an_announcement_to_end_before_it_starts_is_422(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/announcements", json={"title": "t", "starts_at": "2030-01-01T00:00:00Z"}, headers=harness.admin()
    )
    ann = r.json()
    r = await harness.client.patch(
        f"/v1/announcements/{ann['id']}", json={"ends_at": "2029-01-01T00:00:00Z"}, headers=harness.admin()
    )
    assert_names(r, 422, "ends_at")
    for field in ("title", "kind"):
        r = await harness.client.patch(f"/v1/announcements/{ann['id']}", json={field: None}, headers=harness.admin())
        assert_names(r, 422, field)
    r = await harness.client.patch(f"/v1/announcements/{ann['id']}", json={"kind": "popup"}, headers=harness.admin())
    assert_names(r, 422, "kind")
    after = (await harness.client.get(f"/v1/announcements/{ann['id']}", headers=harness.reader())).json()
    assert after == ann


# -- the read-all body, templates, channel accounts --------------------------------------------------


async def test_bad_read_all_category_is_422(harness: Harness) -> None:
    r = await harness.client.post("/v1/me/inbox/read-all", json={"category": "spam"}, headers=harness.user("a"))
    assert_names(r, 422, "category")


async def test_bad_channel_account_is_422(harness: Harness) -> None:
    r = await harness.client.put(
        "/v1/channel-accounts/acct", json={"channel": "pigeon", "config": {}}, headers=harness.admin()
    )
    assert_names(r, 422, "channel")
    r = await harness.client.put(
        "/v1/channel-accounts/acct", json={"channel": "email", "config": {"port": "many"}}, headers=harness.admin()
    )
    body = assert_problem(r, 422)
    assert all(f.startswith("config") for f in error_fields(body)), body
    assert (await harness.client.get("/v1/channel-accounts", headers=harness.admin())).json()["items"] == []


async def test_template_for_unknown_type_or_channel(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.put(
        f"/v1/notification-types/{inbox_type}/templates/pigeon", json={"title": "x"}, headers=harness.admin()
    )
    assert_names(r, 422, "channel")
    r = await harness.client.put(
        f"/v1/notification-types/{inbox_type}/templates/inapp", json={}, headers=harness.admin()
    )
    assert_problem(r, 422)
    r = await harness.client.put(
        f"/v1/notification-types/{inbox_type}/templates/inapp?locale=not%20a%20locale",
        json={"title": "x"},
        headers=harness.admin(),
    )
    assert_names(r, 422, "locale")


# -- NUL characters: valid JSON, but no database stores them in text -----------------------------------


@pytest.mark.parametrize(
    "body_patch,field",
    [
        ({"to": ["ali\u0000ce"]}, "to.0"),
        ({"data": {"amount": "1\u0000"}}, "data.amount"),
        ({"data": {"amount": "1", "k\u0000": "v"}}, "data"),
        ({"actor": {"id": "\u0000"}}, "actor.id"),
    ],
)
async def test_nul_characters_in_a_trigger_are_422(
    harness: Harness, inbox_type: str, body_patch: dict[str, Any], field: str
) -> None:
    body = {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}} | body_patch
    r = await harness.trigger(body)
    errors = error_fields(assert_problem(r, 422))
    assert any(f == field or f.startswith(field + ".") or field.startswith(f + ".") for f in errors), errors
    await assert_nothing_sent(harness, "alice")


async def test_nul_characters_elsewhere_are_4xx(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.put("/v1/users/a%00b", json={"name": "x"}, headers=harness.admin())
    assert 400 <= r.status_code < 500, r.text
    r = await harness.client.put("/v1/users/alice", json={"name": "x\u0000"}, headers=harness.admin())
    assert_names(r, 422, "name")
    r = await harness.client.post("/v1/announcements", json={"title": "t\u0000"}, headers=harness.admin())
    assert_names(r, 422, "title")
    r = await harness.client.get("/v1/me/inbox/itm_%00", headers=harness.user("alice"))
    assert 400 <= r.status_code < 500, r.text
    r = await harness.client.get("/v1/me/inbox", headers=harness.user("al\u0000ice"))
    assert 400 <= r.status_code < 500, r.text
    r = await harness.client.get("/v1/announcements", params={"kind": "notice\u0000"}, headers=harness.reader())
    assert_names(r, 422, "kind")
    r = await harness.client.get("/v1/channel-accounts", params={"channel": "\u0000"}, headers=harness.admin())
    assert_names(r, 422, "channel")
    r = await harness.client.put(
        "/v1/notification-types/recharge.succeeded/templates/inapp",
        json={"title": "ok", "extra": {"deep": ["fine", "bad\u0000"]}},
        headers=harness.admin(),
    )
    assert_names(r, 422, "extra.deep.1")
    assert await list_announcements(harness) == []
    assert (await harness.client.get("/v1/users/alice", headers=harness.reader())).status_code == 404


# -- properties ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


async def assert_never_5xx(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert_problem(r, r.status_code)


@FUZZ
@given(
    type_=st.one_of(st.just("recharge.succeeded"), json_values),
    to=st.one_of(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3), json_values),
    data=st.one_of(st.dictionaries(st.sampled_from(["amount", "x"]), json_values, max_size=2), json_values),
)
async def test_arbitrary_json_in_a_trigger_never_yields_a_5xx(
    harness: Harness, inbox_type: str, type_: Any, to: Any, data: Any
) -> None:
    await assert_never_5xx(await harness.trigger({"type": type_, "to": to, "data": data}))


@FUZZ
@given(body=json_values)
async def test_arbitrary_json_bodies_never_yield_a_5xx(harness: Harness, inbox_type: str, body: Any) -> None:
    await assert_never_5xx(await harness.trigger(body))
    await assert_never_5xx(await harness.client.put("/v1/users/fuzz", json=body, headers=harness.admin()))
    await assert_never_5xx(await harness.client.post("/v1/announcements", json=body, headers=harness.admin()))
    await assert_never_5xx(await harness.client.post("/v1/me/inbox/read-all", json=body, headers=harness.user("fuzz")))


@FUZZ
@given(cursor=st.one_of(st.text(max_size=200), st.binary(max_size=150).map(b64)))
async def test_arbitrary_cursors_never_yield_a_5xx(harness: Harness, cursor: str) -> None:
    await assert_never_5xx(
        await harness.client.get("/v1/me/inbox", params={"cursor": cursor}, headers=harness.user("alice"))
    )
    for path in ("/v1/notification-types", "/v1/announcements"):
        await assert_never_5xx(await harness.client.get(path, params={"cursor": cursor}, headers=harness.reader()))


# -- lone surrogates: valid JSON (``"\ud800"``), but not Unicode text; nothing can encode them ---------

LONE = "\ud800"


def ascii_json(body: Any) -> bytes:
    """JSON with every non-ASCII character escaped, as a client may send it: ``\\ud800`` survives."""
    return json.dumps(body).encode()


async def send_json(harness: Harness, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await harness.client.request(
        method, path, content=ascii_json(body), headers={**headers, "Content-Type": "application/json"}
    )


def surrogate_requests(inbox_type: str) -> list[tuple[str, str, str, Any, str]]:
    """(scope, method, path, body, field named) for a lone surrogate in each kind of string the API takes."""
    trig = {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}}
    return [
        ("send", "POST", "/v1/notifications", trig | {"data": {"amount": "1", "x": LONE}}, "data.x"),
        ("send", "POST", "/v1/notifications", trig | {"data": {"amount": "1", "k" + LONE: 1}}, "data.k\\ud800"),
        ("send", "POST", "/v1/notifications", trig | {"data": {"amount": ["a", {"b": LONE}]}}, "data.amount.1.b"),
        ("send", "POST", "/v1/notifications", trig | {"to": ["ali" + LONE]}, "to.0"),
        ("send", "POST", "/v1/notifications", trig | {"to": [{"id": "a", "name": LONE}]}, "to.0.name"),
        ("send", "POST", "/v1/notifications", trig | {"actor": {"id": LONE}}, "actor.id"),
        ("send", "POST", "/v1/notifications", trig | {"type": LONE}, "type"),
        ("send", "POST", "/v1/notifications", trig | {"send_at": "2030-01-01T00:00:00Z" + LONE}, "send_at"),
        ("send", "POST", "/v1/notifications", {"type": inbox_type, "audience": {"tags": [LONE]}}, "audience.tags.0"),
        ("admin", "PUT", "/v1/users/alice", {"name": "A" + LONE}, "name"),
        ("admin", "PUT", "/v1/users/alice", {"data": {"k": [LONE]}}, "data.k.0"),
        ("admin", "PUT", "/v1/users/alice", {"tags": ["vip", LONE]}, "tags.1"),
        ("admin", "PUT", "/v1/users/alice", {"channels": {"dingtalk_userid": LONE}}, "channels.dingtalk_userid"),
        ("admin", "POST", "/v1/announcements", {"title": "t" + LONE}, "title"),
        ("admin", "POST", "/v1/announcements", {"title": "t", "data": {"x": LONE}}, "data.x"),
        ("admin", "PUT", "/v1/notification-types/t.s", {"name": LONE}, "name"),
        (
            "admin",
            "PUT",
            f"/v1/notification-types/{inbox_type}/templates/inapp",
            {"title": "${amount}" + LONE},
            "title",
        ),
        (
            "admin",
            "PUT",
            f"/v1/notification-types/{inbox_type}/templates/inapp",
            {"title": "t", "x": {"y": LONE}},
            "x.y",
        ),
        (
            "admin",
            "POST",
            "/v1/templates/preview",
            {"type": inbox_type, "channel": "inapp", "data": {"amount": LONE}},
            "data.amount",
        ),
        ("admin", "PUT", "/v1/channel-accounts/acct", {"channel": "webhook", "config": {"url": LONE}}, "config.url"),
        ("admin", "POST", "/v1/users/alice/tokens", {"expires_in": 60, LONE: 1}, "\\ud800"),
    ]


async def test_a_lone_surrogate_anywhere_in_a_body_is_422_naming_the_field(harness: Harness, inbox_type: str) -> None:
    headers = {"send": harness.sender(), "admin": harness.admin()}
    for scope, method, path, body, field in surrogate_requests(inbox_type):
        r = await send_json(harness, method, path, body, headers[scope])
        assert r.status_code == 422, (path, body, r.status_code, r.text)
        problem = assert_problem(r, 422)
        assert names(problem, field), (path, field, problem)
        assert "surrogate" in r.text, r.text
    await assert_nothing_sent(harness, "alice")
    assert await list_announcements(harness) == []
    r = await harness.client.get("/v1/notification-types/t.s", headers=harness.reader())
    assert r.status_code == 404
    r = await harness.client.get(f"/v1/notification-types/{inbox_type}/templates/inapp", headers=harness.reader())
    assert LONE not in r.text and "\\ud800" not in r.text


async def test_a_lone_surrogate_sent_as_raw_bytes_is_422(harness: Harness, inbox_type: str) -> None:
    """json.loads decodes bytes with surrogatepass: the UTF-8 form of U+D800 also becomes a lone surrogate."""
    raw = b'{"type": "' + inbox_type.encode() + b'", "to": ["alice"], "data": {"amount": "\xed\xa0\x80"}}'
    r = await harness.client.post(
        "/v1/notifications", content=raw, headers={**harness.sender(), "Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
    await assert_nothing_sent(harness, "alice")


async def test_an_audience_trigger_with_a_lone_surrogate_breaks_no_inbox(harness: Harness, inbox_type: str) -> None:
    """The report: one audience trigger broke every user's inbox."""
    for user in ("alice", "bob"):
        assert (await harness.client.put(f"/v1/users/{user}", json={}, headers=harness.admin())).status_code == 200
    r = await send_json(
        harness,
        "POST",
        "/v1/notifications",
        {"type": inbox_type, "audience": {"all": True}, "data": {"amount": "1", "x": LONE}},
        harness.sender(),
    )
    assert_names(r, 422, "data.x")
    await harness.drain()
    for user in ("alice", "bob"):
        assert await inbox_of(harness, user) == []


async def asgi_get(harness: Harness, path: str, query: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """A request with a path or query string no HTTP client would encode (a lone surrogate in it)."""
    app = harness.client._transport.app  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("herald.test", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_a_lone_surrogate_in_a_path_parameter_is_422(harness: Harness) -> None:
    status, body = await asgi_get(harness, "/v1/users/al" + LONE, b"", harness.reader())
    assert status == 422, body
    problem = json.loads(body.decode("utf-8"))
    assert error_fields(problem) == ["user_id"], problem


async def test_a_lone_surrogate_in_a_user_token_is_401(harness: Harness) -> None:
    r = await harness.client.get("/v1/me/inbox", headers=harness.user("al" + LONE))
    assert_problem(r, 401)


# -- absurd times ------------------------------------------------------------------------------------

ABSURD_TIMES = [
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9001-01-01T00:00:00Z",
]


@pytest.mark.parametrize("value", ABSURD_TIMES)
@pytest.mark.parametrize("field", ["send_at", "expires_at"])
async def test_absurd_trigger_times_are_422(harness: Harness, inbox_type: str, field: str, value: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, field: value})
    body = assert_names(r, 422, field)
    assert "1970" in body["detail"] and "9000" in body["detail"], body
    await assert_nothing_sent(harness, "alice")


@pytest.mark.parametrize("value", ABSURD_TIMES)
@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
async def test_absurd_announcement_times_are_422(harness: Harness, field: str, value: str) -> None:
    r = await harness.client.post("/v1/announcements", json={"title": "t", field: value}, headers=harness.admin())
    assert_names(r, 422, field)
    assert await list_announcements(harness) == []
    r = await harness.client.post("/v1/announcements", json={"title": "t"}, headers=harness.admin())
    ann = r.json()
    r = await harness.client.patch(f"/v1/announcements/{ann['id']}", json={field: value}, headers=harness.admin())
    assert_names(r, 422, field)


async def test_sane_times_with_large_offsets_are_accepted_in_utc(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.post(
        "/v1/announcements",
        json={"title": "t", "starts_at": "2030-01-01T23:30:00-23:59", "ends_at": "9000-01-01T00:00:00+23:59"},
        headers=harness.admin(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["starts_at"].startswith("2030-01-02T23:29:00")
    r = await harness.trigger(
        {"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}, "expires_at": "2100-01-01T00:00:00+14:00"}
    )
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    "cursor",
    [
        *[b64(json.dumps([t, "itm_1"]).encode()) for t in ABSURD_TIMES],
        b64(json.dumps(["2030-01-01T00:00:00+00:00", LONE]).encode()),
        b64(json.dumps(["2030-01-01T00:00:00+00:00", "x" + LONE + "y"]).encode()),
        b64(b'["2030-01-01T00:00:00+00:00", "\xed\xa0\x80"]'),
        b64(json.dumps(["2030-01-01T00:00:00+00:00", ""]).encode()),
        b64(json.dumps(["2030-01-01T00:00:00+00:00", "x" * 300]).encode()),
        b64(json.dumps(["2030-01-01T00:00:00+00:00", "itm_1", "extra"]).encode()),
        b64(json.dumps([LONE, "itm_1"]).encode()),
        b64(json.dumps([5, "itm_1"]).encode()),
        b64(json.dumps([None, None]).encode()),
    ],
)
async def test_cursors_decoding_to_absurd_values_are_400(harness: Harness, cursor: str) -> None:
    r = await harness.client.get("/v1/me/inbox", params={"cursor": cursor}, headers=harness.user("alice"))
    assert_names(r, 400, "cursor")
    r = await harness.client.get("/v1/announcements", params={"cursor": cursor}, headers=harness.reader())
    assert_names(r, 400, "cursor")


@pytest.mark.parametrize("key", [LONE, "a" + LONE, "", "x" * 300])
async def test_type_list_cursors_decoding_to_bad_keys_are_400(harness: Harness, key: str) -> None:
    cursor = b64(json.dumps([key]).encode())
    r = await harness.client.get("/v1/notification-types", params={"cursor": cursor}, headers=harness.reader())
    assert_names(r, 400, "cursor")


# -- nesting depth and collection sizes ------------------------------------------------------------------


def nested(depth: int) -> Any:
    """A value ``depth`` levels deep: ``{"a": {"a": ... 1}}``."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def json_requests(inbox_type: str, value: Any) -> list[tuple[str, str, str, Any, str]]:
    """(scope, method, path, body, field) putting ``value`` in each free-form JSON field."""
    return [
        (
            "send",
            "POST",
            "/v1/notifications",
            {"type": inbox_type, "to": ["alice"], "data": {"amount": "1", "x": value}},
            "data.x",
        ),
        (
            "send",
            "POST",
            "/v1/notifications",
            {"type": inbox_type, "to": [{"id": "alice", "data": {"x": value}}], "data": {"amount": "1"}},
            "to.0.data.x",
        ),
        ("admin", "PUT", "/v1/users/alice", {"data": {"x": value}}, "data.x"),
        ("admin", "POST", "/v1/announcements", {"title": "t", "data": {"x": value}}, "data.x"),
        (
            "admin",
            "PUT",
            f"/v1/notification-types/{inbox_type}/templates/inapp",
            {"title": "t", "x": {"x": value}},
            "x.x",
        ),
    ]


@pytest.mark.parametrize("depth", [40, 900])
async def test_json_nested_too_deep_is_422_naming_the_field_and_the_limit(
    harness: Harness, inbox_type: str, depth: int
) -> None:
    headers = {"send": harness.sender(), "admin": harness.admin()}
    for scope, method, path, body, field in json_requests(inbox_type, nested(depth)):
        r = await send_json(harness, method, path, body, headers[scope])
        problem = assert_problem(r, 422)
        assert any(f.startswith(field + ".") for f in error_fields(problem)), (path, problem)
        assert "32 levels" in problem["detail"], problem
    await assert_nothing_sent(harness, "alice")
    assert await list_announcements(harness) == []


async def test_json_nested_within_the_limit_is_accepted(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1", "x": nested(28)}})
    assert r.status_code == 202, r.text
    r = await harness.client.put("/v1/users/bob", json={"data": {"x": nested(28)}}, headers=harness.admin())
    assert r.status_code == 200, r.text
    assert r.json()["data"]["x"] == nested(28)


@pytest.mark.parametrize("value", [list(range(1001)), {f"k{i}": i for i in range(1001)}])
async def test_oversized_collections_are_422_naming_the_field_and_the_limit(
    harness: Harness, inbox_type: str, value: Any
) -> None:
    headers = {"send": harness.sender(), "admin": harness.admin()}
    for scope, method, path, body, field in json_requests(inbox_type, value):
        r = await send_json(harness, method, path, body, headers[scope])
        problem = assert_names(r, 422, field)
        assert "1001" in problem["detail"] and "1000" in problem["detail"], problem
    if isinstance(value, dict):  # the field itself over the cap
        assert_names(await send_json(harness, "PUT", "/v1/users/alice", {"data": value}, harness.admin()), 422, "data")
    await assert_nothing_sent(harness, "alice")


async def test_a_long_inline_recipient_list_is_not_a_collection_over_the_cap(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": [f"u{i}" for i in range(2000)], "data": {"amount": "1"}})
    assert r.status_code == 202, r.text


# -- properties over open-ended input --------------------------------------------------------------------

# st.characters() leaves out surrogates unless asked for them (category Cs)
any_text = st.text(st.characters() | st.characters(categories=["Cs"]) | st.just("\x00"), max_size=8)
wild_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(data=wild_json, depth=st.integers(min_value=0, max_value=60))
async def test_arbitrary_json_with_any_code_point_in_data_never_yields_a_5xx(
    harness: Harness, inbox_type: str, data: Any, depth: int
) -> None:
    """Any JSON (lone surrogates included), nested to any depth, in every free-form field."""
    headers = {"send": harness.sender(), "admin": harness.admin()}
    value = nested(depth) if depth % 3 == 0 else data
    for scope, method, path, body, _ in json_requests(inbox_type, value):
        r = await send_json(harness, method, path, body, headers[scope])
        await assert_never_5xx(r)
    r = await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))
    assert r.status_code == 200, r.text
    assert (await harness.client.get("/v1/announcements", headers=harness.reader())).status_code == 200


cursor_parts = st.one_of(
    st.datetimes(timezones=st.timezones() | st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(ABSURD_TIMES),
    any_text,
    wild_json,
)


@FUZZ
@given(at=cursor_parts, item_id=st.one_of(any_text, wild_json))
async def test_cursors_of_arbitrary_json_never_yield_a_5xx(harness: Harness, at: Any, item_id: Any) -> None:
    cursor = b64(json.dumps([at, item_id]).encode())
    key_cursor = b64(json.dumps([item_id]).encode())
    for path, headers, c in [
        ("/v1/me/inbox", harness.user("alice"), cursor),
        ("/v1/announcements", harness.reader(), cursor),
        ("/v1/notification-types", harness.reader(), key_cursor),
    ]:
        await assert_never_5xx(await harness.client.get(path, params={"cursor": c}, headers=headers))
