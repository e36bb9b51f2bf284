"""Templates through the API: validation on PUT, preview, and data that is never re-evaluated."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import httpx
import pytest

from tests.conftest import Harness

PROBLEM = "application/problem+json"
TYPE_PATH = "/v1/notification-types/recharge.succeeded"


def fields_of(r: httpx.Response) -> list[str]:
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == r.status_code and body["title"] and body["detail"]
    return [e["field"] for e in body["errors"]]


async def stored_templates(harness: Harness) -> dict[str, Any]:
    r = await harness.client.get(TYPE_PATH, headers=harness.reader())
    assert r.status_code == 200
    return r.json()["templates"]  # type: ignore[no-any-return]


async def preview(harness: Harness, **body: Any) -> httpx.Response:
    return await harness.client.post(
        "/v1/templates/preview",
        json={"type": "recharge.succeeded", "channel": "inapp", **body},
        headers=harness.reader(),
    )


async def put_template(harness: Harness, fields: dict[str, Any], locale: str = "en") -> httpx.Response:
    return await harness.client.put(
        f"{TYPE_PATH}/templates/inapp", params={"locale": locale}, json=fields, headers=harness.admin()
    )


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"title": "ok", "summary": "Topped up ${ amount"}, "summary"),
        ({"title": "{% if x %}never closed"}, "title"),
        ({"title": "ok", "body": "${ amount|no_such_filter }"}, "body"),
        ({"title": "ok", "actions": [{"label": "fine"}, {"label": "${ }"}]}, "actions.1.label"),
        ({"title": "ok", "actions": [{"label": "ok", "url": {"deep": "{% endfor %}"}}]}, "actions.0.url.deep"),
        ({"title": "${ " + "(" * 300 + "1" + ")" * 300 + " }"}, "title"),
    ],
)
async def test_a_template_that_does_not_compile_is_422_naming_the_field(
    harness: Harness, inbox_type: str, fields: dict[str, Any], field: str
) -> None:
    before = await stored_templates(harness)
    r = await put_template(harness, fields)
    assert r.status_code == 422, r.text
    assert fields_of(r) == [field]
    assert await stored_templates(harness) == before


async def test_a_valid_template_is_stored_and_previewed(harness: Harness, inbox_type: str) -> None:
    r = await put_template(
        harness, {"title": "Paid", "summary": "${amount} for ${order.id}", "html": "<b>${amount}</b>"}
    )
    assert r.status_code == 200, r.text
    r = await preview(harness, locale="en", data={"amount": "<5>", "order": {"id": "o-9"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["locale"] == "en"
    assert body["fields"] == {"title": "Paid", "summary": "<5> for o-9", "html": "<b>&lt;5&gt;</b>"}


async def test_preview_picks_the_locale(harness: Harness, inbox_type: str) -> None:
    zh = await preview(harness, locale="zh-CN", data={"amount": "100.00"})
    assert zh.status_code == 200
    assert zh.json()["fields"] == {"title": "充值成功", "summary": "充值 100.00 元", "body": "您的账户已到账 100.00 元"}
    en_gb = await preview(harness, locale="en-GB", data={"amount": "1"})
    assert en_gb.json()["locale"] == "en" and en_gb.json()["fields"]["body"] == "1 credited"
    default = await preview(harness, data={"amount": "1"})
    assert default.json()["locale"] == "zh-CN"


async def test_preview_names_the_missing_variable(harness: Harness, inbox_type: str) -> None:
    r = await preview(harness, locale="en", data={"amont": "1"})
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["data.amount"]
    assert "amount" in r.json()["detail"]


async def test_preview_of_unknown_type_or_channel_is_422(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.post(
        "/v1/templates/preview", json={"type": "no.such", "channel": "inapp", "data": {}}, headers=harness.reader()
    )
    assert r.status_code == 422 and fields_of(r) == ["type"]
    r = await preview(harness, channel="email", data={"amount": "1"})
    assert r.status_code == 422 and fields_of(r) == ["channel"]
    r = await preview(harness, data={"amount": "1"}, extra=True)
    assert r.status_code == 422 and fields_of(r) == ["extra"]


async def test_preview_needs_a_read_key(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.post(
        "/v1/templates/preview",
        json={"type": "recharge.succeeded", "channel": "inapp", "data": {"amount": "1"}},
        headers=harness.user("alice"),
    )
    assert r.status_code == 401


async def test_data_is_rendered_literally_not_evaluated(harness: Harness, inbox_type: str) -> None:
    sneaky = "${ ''.__class__ }"
    more = "{% for c in [].__class__.__base__.__subclasses__() %}${ c }{% endfor %}"
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": sneaky}})
    assert r.status_code == 202, r.text
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": more}})
    assert r.status_code == 202, r.text
    items = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert sorted(i["body"] for i in items) == sorted([f"您的账户已到账 {sneaky} 元", f"您的账户已到账 {more} 元"])
    assert all("<class" not in i["summary"] for i in items)
    r = await preview(harness, data={"amount": sneaky})
    assert r.status_code == 200 and r.json()["fields"]["summary"] == f"充值 {sneaky} 元"


@pytest.mark.parametrize(
    "source",
    [
        "${ ''.__class__ }",
        "${ self }",
        "${ cycler.__init__.__globals__.os }",
        "${ dict }",
        "${ 9 ** 9999999 }",
        "${ 1 / 0 }",
        "${ {}|dictsort(by='x') }",
        "{% include 'x' %}",
    ],
)
async def test_a_template_that_fails_to_render_is_422_not_500(harness: Harness, inbox_type: str, source: str) -> None:
    """It compiles, so PUT takes it; rendering it refuses, and a trigger creates nothing."""
    r = await put_template(harness, {"title": "t", "summary": "${amount}", "body": source}, locale="zh-CN")
    assert r.status_code == 200, r.text
    r = await preview(harness, data={"amount": "1"})
    assert r.status_code == 422, r.text
    fields_of(r)
    assert "<class" not in r.text
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
    assert r.status_code == 422, r.text
    fields_of(r)
    assert (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"] == []


# -- limits (issue 7, item 2) ----------------------------------------------------------------------

T = "t.templates"
SLOW = (  # each call sorts 5,000 items: the time limit comes before the step limit
    "{% macro f(n) %}{% if n %}${ (range(5000)|reverse|list|sort|length) and '' }${ f(n - 1) }${ f(n - 1) }"
    "{% endif %}{% endmacro %}${ f(depth) }"
)


async def new_type(harness: Harness, fields: dict[str, Any] | None = None) -> httpx.Response:
    """A type with one in-app template (zh-CN) of ``fields``: the put's response."""
    await harness.put_type(T, ["inapp"], {})
    return await harness.client.put(
        f"/v1/notification-types/{T}/templates/inapp", params={"locale": "zh-CN"}, json=fields, headers=harness.admin()
    )


async def preview_t(harness: Harness, data: dict[str, Any]) -> httpx.Response:
    return await preview(harness, type=T, locale="zh-CN", data=data)


async def inbox_of(harness: Harness, user: str) -> list[dict[str, Any]]:
    return (await harness.client.get("/v1/me/inbox", headers=harness.user(user))).json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "source,limit",
    [
        ("{% for i in range(30000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}", "range"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "steps"),
        ("${ 'a'.center(10**9) }", "string"),
        ("${ ('a' * 60000)|replace('a', 'aaaa') }", "string"),
        ("${ 'a' * 10000000 }", "string"),
        ("{% set x %}{% for i in range(10000) %}${ 'a' * 60000 }{% endfor %}{% endset %}${ x|length }", "produced"),
        ("{% for i in range(10000) %}${ 'abcdefgh' }{% endfor %}", "output"),
        (SLOW.replace("f(depth)", "f(40)"), "time"),
    ],
)
async def test_a_template_over_a_limit_is_refused_when_saved(harness: Harness, source: str, limit: str) -> None:
    r = await new_type(harness, {"title": "t", "body": source})
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["body"]
    assert f"limit: {limit}" in r.json()["errors"][0]["message"]
    r = await harness.client.get(f"/v1/notification-types/{T}", headers=harness.reader())
    assert r.json()["templates"] == {}


@pytest.mark.parametrize(
    "source,data,limit",
    [
        ("${ 'a'.center(width) }", {"width": 10**9}, "string"),
        ("${ text|replace('a', 'aaaaaaaaaa') }", {"text": "a" * 60_000}, "string"),
        ("{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}", {"n": 10_000}, "steps"),
        ("${ text * times }", {"text": "ab", "times": 10**8}, "string"),
    ],
)
async def test_a_limit_reached_with_the_data_is_422_at_trigger_and_preview(
    harness: Harness, source: str, data: dict[str, Any], limit: str
) -> None:
    r = await new_type(harness, {"title": "t", "body": source})
    assert r.status_code == 200, r.text
    tracemalloc.start()
    try:
        r = await harness.trigger({"type": T, "to": ["alice"], "data": data})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, peak  # the string is refused before it is built, not after
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["templates.inapp.body"]
    assert f"limit: {limit}" in r.json()["errors"][0]["message"]
    r = await preview_t(harness, data)
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["templates.inapp.body"]
    assert await inbox_of(harness, "alice") == []


async def test_healthz_answers_while_a_hostile_template_renders(harness: Harness) -> None:
    """Rendering runs in a worker thread and stops at the time limit: the event loop stays free."""
    r = await new_type(harness, {"title": "t", "body": SLOW})
    assert r.status_code == 200, r.text  # with no data the recursion ends at once

    async def health_latency() -> float:
        await asyncio.sleep(0.2)  # the render is under way
        start = time.perf_counter()
        r = await harness.client.get("/healthz")
        assert r.status_code == 200
        return time.perf_counter() - start

    start = time.perf_counter()
    trigger, latency = await asyncio.gather(
        harness.trigger({"type": T, "to": ["alice"], "data": {"depth": 60}}), health_latency()
    )
    elapsed = time.perf_counter() - start
    assert trigger.status_code == 422, trigger.text
    assert "limit: time" in trigger.json()["errors"][0]["message"]
    assert elapsed < 15, elapsed  # stopped at the limit (2**60 calls otherwise)
    assert latency < 0.5, latency


# -- real use (issue 7, item 12) -------------------------------------------------------------------


async def test_every_missing_variable_is_named_at_once(harness: Harness) -> None:
    r = await new_type(harness, {"title": "${a}", "summary": "${b} ${a}", "body": "${order.id} ${c | default('')}"})
    assert r.status_code == 200, r.text
    r = await harness.trigger({"type": T, "to": ["alice"], "data": {}})
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["data.a", "data.b", "data.order"]
    r = await preview_t(harness, {"b": 1})
    assert r.status_code == 422 and fields_of(r) == ["data.a", "data.order"]


async def test_optional_variables_and_null(harness: Harness) -> None:
    body = "${amount}{% if vip is defined %} VIP{% endif %}${ coupon | default('') }|${ note }"
    r = await new_type(harness, {"title": "t", "body": body})
    assert r.status_code == 200, r.text
    r = await preview_t(harness, {"amount": 5, "note": None})
    assert r.status_code == 200, r.text
    assert r.json()["fields"]["body"] == "5|"
    r = await preview_t(harness, {"amount": 5, "vip": True, "coupon": "C1", "note": "n"})
    assert r.json()["fields"]["body"] == "5 VIPC1|n"
    r = await harness.trigger({"type": T, "to": ["alice"], "data": {"amount": 5, "note": None}})
    assert r.status_code == 202, r.text
    assert (await inbox_of(harness, "alice"))[0]["body"] == "5|"


@pytest.mark.parametrize(
    "channel,fields,field",
    [
        ("inapp", {"titel": "Hi"}, "titel"),
        ("inapp", {"title": "Hi", "body_text": "x"}, "body_text"),
        ("email", {"subject": "s", "bodyy": "x"}, "bodyy"),
        ("dingtalk", {"text": "x", "titel": "t"}, "titel"),
    ],
)
async def test_unknown_template_fields_are_refused(
    harness: Harness, inbox_type: str, channel: str, fields: dict[str, Any], field: str
) -> None:
    r = await harness.client.put(f"{TYPE_PATH}/templates/{channel}", json=fields, headers=harness.admin())
    assert r.status_code == 422, r.text
    assert field in fields_of(r)


async def test_webhook_takes_fields_of_any_name_it_sends_them_as_is(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.put(
        f"{TYPE_PATH}/templates/webhook", json={"order_id": "${order.id}", "title": "t"}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text


async def test_an_unknown_recipient_field_is_refused_when_saved(harness: Harness, inbox_type: str) -> None:
    r = await put_template(harness, {"title": "尊敬的 ${recipient.nmae}"})
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["title"]
    assert "nmae" in r.json()["errors"][0]["message"]


async def test_adding_a_channel_to_a_live_type_needs_its_template_first(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.put(TYPE_PATH, json={"channels": ["inapp", "email"]}, headers=harness.admin())
    assert r.status_code == 422, r.text
    assert fields_of(r) == ["channels.1"]
    r = await harness.client.get(TYPE_PATH, headers=harness.reader())
    assert r.json()["channels"] == ["inapp"]
    r = await harness.client.put(f"{TYPE_PATH}/templates/email", json={"subject": "s"}, headers=harness.admin())
    assert r.status_code == 200, r.text
    r = await harness.client.put(TYPE_PATH, json={"channels": ["inapp", "email"]}, headers=harness.admin())
    assert r.status_code == 200, r.text


async def test_a_new_type_may_name_channels_before_its_templates(harness: Harness) -> None:
    r = await harness.client.put(
        "/v1/notification-types/new.type", json={"channels": ["inapp", "email"]}, headers=harness.admin()
    )
    assert r.status_code == 201, r.text
    r = await harness.client.put(
        "/v1/notification-types/new.type", json={"channels": ["inapp", "email"], "name": "N"}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text  # no template yet: still being set up


async def test_recipient_variables_render_per_recipient(harness: Harness) -> None:
    r = await new_type(
        harness,
        {
            "title": "尊敬的 ${recipient.name}",
            "summary": "${recipient.id} ${recipient.data.level} ${amount}",
            "body": "${recipient.email}|${recipient.phone}",
        },
    )
    assert r.status_code == 200, r.text
    await harness.client.put(
        "/v1/users/alice",
        json={"name": "张三", "email": "a@example.com", "data": {"level": "VIP"}},
        headers=harness.admin(),
    )
    await harness.client.put("/v1/users/bob", json={"name": "李四"}, headers=harness.admin())
    r = await harness.trigger({"type": T, "to": ["alice", "bob", "carol"], "data": {"amount": "9"}})
    assert r.status_code == 202, r.text
    got = {}
    for user in ("alice", "bob", "carol"):
        item = (await inbox_of(harness, user))[0]
        got[user] = (item["title"], item["summary"], item["body"])
    assert got == {
        "alice": ("尊敬的 张三", "alice VIP 9", "a@example.com|"),
        "bob": ("尊敬的 李四", "bob  9", "|"),
        "carol": ("尊敬的 ", "carol  9", "|"),
    }
    r = await preview_t(harness, {"amount": "9"})
    assert r.status_code == 200 and r.json()["fields"]["title"] == "尊敬的 Sample User"


async def test_data_with_its_own_recipient_keeps_it(harness: Harness) -> None:
    r = await new_type(harness, {"title": "to ${recipient.name}"})
    assert r.status_code == 200, r.text
    r = await harness.trigger({"type": T, "to": ["alice"], "data": {"recipient": {"name": "王五"}}})
    assert r.status_code == 202, r.text
    assert (await inbox_of(harness, "alice"))[0]["title"] == "to 王五"
