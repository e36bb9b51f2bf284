"""Templates through the API: validation on PUT, preview, and data that is never re-evaluated."""

from __future__ import annotations

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
        ({"title": "ok", "extra": {"deep": "{% endfor %}"}}, "extra.deep"),
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
        harness, {"title": "Paid", "summary": "${amount} for ${order.id}", "body_html": "<b>${amount}</b>"}
    )
    assert r.status_code == 200, r.text
    r = await preview(harness, locale="en", data={"amount": "<5>", "order": {"id": "o-9"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["locale"] == "en"
    assert body["fields"] == {"title": "Paid", "summary": "<5> for o-9", "body_html": "<b>&lt;5&gt;</b>"}


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
        "${ 'a' * 10000000 }",
        "${ 9 ** 9999999 }",
        "${ 1 / 0 }",
        "{% macro m() %}${ m() }{% endmacro %}${ m() }",
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
