"""The console's notification type and template pages over HTTP, on SQLite and PostgreSQL: list and
search, create and edit with every rule, delete; templates per channel x locale with the live
preview (the same rendering as ``POST /v1/templates/preview``); viewers read and change nothing;
each change audited; mistakes named beside their field with the input kept; hostile text escaped."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from herald.core.console import Role
from tests.conftest import Harness
from tests.web.console_support import audit_rows, csrf_of, logged_in

EN = {"Accept-Language": "en"}
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
FULL: dict[str, Any] = {
    "key": "order.shipped",
    "name": "Order shipped",
    "names": "en: Order shipped\nzh-CN: 订单已发货",
    "category": "reminder",
    "priority": "high",
    "channels": ["inapp", "email"],
    "critical": "on",
    "ttl_seconds": "86400",
    "description": "When a parcel leaves",
    "quiet_hours": "drop",
    "dedup_seconds": "60",
    "cap_channel": ["", "email"],
    "cap_per": ["day", "hour"],
    "cap_max": ["5", "2"],
    "throttle_max": "10",
    "throttle_window": "60",
    "merge_key": "${order}",
    "merge_window": "300",
    "digest_window": "",
}


async def _type_json(harness: Harness, key: str) -> Any:
    r = await harness.client.get(f"/v1/notification-types/{key}", headers=harness.admin())
    return r.json() if r.status_code == 200 else None


async def test_an_operator_creates_a_type_with_every_rule_as_the_api_would(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    r = await harness.client.post("/console/types", data={**FULL, "csrf_token": token})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/types/order.shipped?notice=notice.type_created"
    saved = await _type_json(harness, "order.shipped")
    assert saved["names"] == {"en": "Order shipped", "zh-CN": "订单已发货"}
    assert (saved["priority"], saved["critical"], saved["ttl_seconds"], saved["quiet_hours"]) == (
        "high",
        True,
        86400,
        "drop",
    )
    assert saved["channels"] == ["inapp", "email"] and saved["dedup_seconds"] == 60
    assert saved["caps"] == [{"channel": None, "per": "day", "max": 5}, {"channel": "email", "per": "hour", "max": 2}]
    assert saved["throttle"] == {"max": 10, "window_seconds": 60}
    assert saved["merge"] == {"key": "${order}", "window_seconds": 300}
    page = await harness.client.get(r.headers["location"], headers=EN)
    assert "Type created." in page.text and 'value="${order}"' in page.text and "订单已发货" in page.text
    listed = await harness.client.get("/console/types?q=SHIPPED", headers=EN)
    assert ">order.shipped</a>" in listed.text
    assert ">order.shipped</a>" not in (await harness.client.get("/console/types?q=nothing")).text
    # edit: the digest and a name; the key stays
    edited = {**FULL, "name": "Shipped!", "digest_channels": ["email"], "digest_window": "3600", "csrf_token": token}
    r = await harness.client.post("/console/types/order.shipped", data=edited)
    assert r.status_code == 303, r.text
    saved = await _type_json(harness, "order.shipped")
    assert saved["name"] == "Shipped!" and saved["digest"] == {
        "channels": ["email"],
        "window_seconds": 3600,
        "max_items": 50,
    }
    actions = [(a, t) for _, a, t, _ in await audit_rows(harness.herald) if a.startswith("type.")]
    assert actions == [("type.create", "order.shipped"), ("type.update", "order.shipped")]


async def test_mistakes_are_named_beside_their_field_with_the_input_kept(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    cases = [
        ({"ttl_seconds": "soon"}, "ttl_seconds", "valid integer"),
        ({"dedup_seconds": "0"}, "dedup_seconds", "greater than or equal to 1"),
        ({"channels": ["inapp", "pigeon"]}, "channels", "unknown channel &#39;pigeon&#39;"),
        ({"cap_max": ["0", ""]}, "caps", "caps.0.max"),
        ({"throttle_max": "3", "throttle_window": ""}, "throttle", "throttle.window_seconds"),
        ({"names": "no colon here"}, "names", "is not"),
        ({"key": "bad key!"}, "key", "must be 1 to 200"),
    ]
    for change, field, message in cases:
        r = await harness.client.post("/console/types", data={**FULL, **change, "csrf_token": token}, headers=EN)
        assert r.status_code == 422, (change, r.text)
        assert f'<p class="field-error" id="err-{field}">' in r.text, change
        assert message in r.text, (change, r.text)
        assert "When a parcel leaves" in r.text  # what was typed is kept
    assert await _type_json(harness, "order.shipped") is None
    assert not [a for _, a, _, _ in await audit_rows(harness.herald) if a.startswith("type.")]
    await harness.client.post("/console/types", data={**FULL, "csrf_token": token})
    taken = await harness.client.post("/console/types", data={**FULL, "csrf_token": token}, headers=EN)
    assert taken.status_code == 409 and "exists already" in taken.text


async def test_a_viewer_sees_types_and_templates_but_changes_nothing(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp"], {"inapp": {"title": "Hi ${name}"}})
    token = await logged_in(harness.client, harness.herald, "vic", Role.VIEWER)
    page = await harness.client.get("/console/types/t1", headers=EN)
    assert page.status_code == 200 and "<fieldset disabled>" in page.text and "Delete this type" not in page.text
    assert "New type" not in (await harness.client.get("/console/types", headers=EN)).text
    assert (await harness.client.get("/console/types/new")).status_code == 403
    attempts = [
        ("/console/types", {**FULL}),
        ("/console/types/t1", {**FULL, "name": "changed"}),
        ("/console/types/t1/delete", {}),
        ("/console/templates/t1/inapp/zh-CN", {"title": "changed"}),
        ("/console/templates/t1/inapp/zh-CN/delete", {}),
    ]
    for path, data in attempts:
        r = await harness.client.post(path, data={**data, "csrf_token": token})
        assert r.status_code == 403, path
    saved = await _type_json(harness, "t1")
    assert saved["name"] == "t1" and saved["templates"]["inapp"]["zh-CN"] == {"title": "Hi ${name}"}
    assert (await harness.client.get("/console/templates/t1/inapp/zh-CN")).status_code == 200
    assert [a for _, a, _, _ in await audit_rows(harness.herald)] == ["console.login"]


async def test_delete_removes_the_type_and_its_templates_audited(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp"], {"inapp": {"title": "Hi"}})
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    page = await harness.client.get("/console/types/t1", headers=EN)
    assert 'data-confirm="Delete the type t1 and all its templates?"' in page.text
    r = await harness.client.post("/console/types/t1/delete", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/types?notice=notice.type_deleted"
    assert await _type_json(harness, "t1") is None
    assert (await harness.client.post("/console/types/t1/delete", data={"csrf_token": token})).status_code == 404
    assert ("type.delete", "t1") in [(a, t) for _, a, t, _ in await audit_rows(harness.herald)]


async def test_hostile_type_names_and_template_text_render_as_text(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    for payload in XSS:
        data = {**FULL, "key": f"x{len(payload)}", "name": payload, "description": payload, "csrf_token": token}
        assert (await harness.client.post("/console/types", data=data)).status_code == 303
    pages = [await harness.client.get(p) for p in ("/console/types", "/console/templates", "/console/types/x25")]
    fields = {"title": XSS[0], "body": XSS[1], "csrf_token": token}
    r = await harness.client.post("/console/templates/x25/inapp/en", data=fields)
    assert r.status_code == 303, r.text
    pages.append(await harness.client.get("/console/templates/x25/inapp/en"))
    for page in pages:
        assert page.status_code == 200
        for payload in XSS:
            assert payload not in page.text
        assert str(escape(XSS[0])) in page.text or str(escape(XSS[1])) in page.text


# -- templates --------------------------------------------------------------------------------------------


async def test_the_template_form_follows_the_channel_schema(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp", "email", "dingtalk", "sms"], {})
    await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    inapp = (await harness.client.get("/console/templates/t1/inapp/en")).text
    assert 'name="title"' in inapp and 'name="summary"' in inapp and '<textarea id="tf-actions"' in inapp
    ding = (await harness.client.get("/console/templates/t1/dingtalk/en")).text
    assert '<select id="tf-msgtype" name="msgtype">' in ding and 'name="at_all"' in ding and "text *" in ding
    assert (await harness.client.get("/console/templates/t1/pigeon/en")).status_code == 404
    assert (await harness.client.get("/console/templates/nope/inapp/en")).status_code == 404
    assert (await harness.client.get("/console/templates/t1/inapp/not a locale")).status_code == 404


async def test_an_operator_saves_templates_as_the_api_does_audited(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp", "email", "dingtalk"], {})
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    base = "/console/templates/t1"
    r = await harness.client.post(f"{base}/inapp/en", data={"title": "Hi ${name}", "body": "b", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"{base}/inapp/en?notice=notice.template_saved"
    ding = {"msgtype": "text", "text": "Paid ${amount}", "at_all": "on", "_extra": "", "csrf_token": token}
    assert (await harness.client.post(f"{base}/dingtalk/zh-CN", data=ding)).status_code == 303
    saved = (await _type_json(harness, "t1"))["templates"]
    assert saved["inapp"]["en"] == {"title": "Hi ${name}", "body": "b"}
    assert saved["dingtalk"]["zh-CN"] == {"msgtype": "text", "text": "Paid ${amount}", "at_all": True}
    page = await harness.client.get(f"{base}/inapp/en", headers=EN)
    assert 'value="Hi ${name}"' in page.text and "Delete this template" in page.text
    r = await harness.client.post(f"{base}/inapp/en/delete", data={"csrf_token": token})
    assert r.status_code == 303 and "inapp" not in (await _type_json(harness, "t1"))["templates"]
    audited = [(a, d.get("channel"), d.get("locale")) for _, a, _, d in await audit_rows(harness.herald)]
    assert ("template.save", "inapp", "en") in audited and ("template.save", "dingtalk", "zh-CN") in audited
    assert ("template.delete", "inapp", "en") in audited


async def test_a_template_with_mistakes_comes_back_naming_the_field(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp", "dingtalk"], {})
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    cases = [
        ("inapp", {"title": "Hi ${name"}, "title"),
        ("inapp", {"actions": "[not json"}, "actions"),
        ("inapp", {"_extra": "[1]"}, "_extra"),
        ("dingtalk", {"msgtype": "text", "text": ""}, "text"),
        ("inapp", {"title": "${ 'a'.center(10**9) }"}, "title"),
    ]
    for channel, data, field in cases:
        r = await harness.client.post(f"/console/templates/t1/{channel}/en", data={**data, "csrf_token": token})
        assert r.status_code == 422, (data, r.text)
        assert f'<div class="field-error" data-for="{field}" role="alert"><p>{field}' in r.text, (data, r.text)
        typed = next(iter(data.values()))
        if typed:
            assert str(escape(typed)) in r.text  # kept
    assert (await _type_json(harness, "t1"))["templates"] == {}


async def _preview(harness: Harness, token: str, path: str, pairs: list[list[str]]) -> Any:
    return await harness.client.post(f"{path}/preview", json={"form": pairs}, headers={"X-CSRF-Token": token})


async def test_the_preview_renders_what_is_typed_as_the_api_preview_renders_what_is_saved(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp", "email"], {})
    token = await logged_in(harness.client, harness.herald, "vic", Role.VIEWER)  # a viewer may preview
    fields = {"subject": "Paid ${amount}", "html": "<b>${amount}</b> to ${recipient.name}", "text": "t"}
    data = {"amount": "9.50"}
    pairs = [[k, v] for k, v in fields.items()] + [["_data", '{"amount": "9.50"}']]
    r = await _preview(harness, token, "/console/templates/t1/email/en", pairs)
    assert r.status_code == 200, r.text
    mine = r.json()["fields"]
    assert mine["subject"] == "Paid 9.50" and mine["html"] == "<b>9.50</b> to Sample User"
    # the same template saved, through the API's preview
    await harness.client.put(
        "/v1/notification-types/t1/templates/email?locale=en", json=fields, headers=harness.admin()
    )
    api = await harness.client.post(
        "/v1/templates/preview",
        json={"type": "t1", "channel": "email", "locale": "en", "data": data},
        headers=harness.reader(),
    )
    assert api.json()["fields"] == mine
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


async def test_the_preview_names_the_renderers_errors_by_field(harness: Harness) -> None:
    await harness.put_type("t1", ["inapp"], {})
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    path = "/console/templates/t1/inapp/en"
    missing = await _preview(harness, token, path, [["title", "Hi ${name}"], ["_data", "{}"]])
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "_data" and "name" in missing.json()["errors"][0]["message"]
    syntax = await _preview(harness, token, path, [["title", "Hi ${name"]])
    assert syntax.status_code == 422 and syntax.json()["errors"][0]["field"] == "title"
    bad_data = await _preview(harness, token, path, [["title", "x"], ["_data", "{"]])
    assert bad_data.json()["errors"][0]["field"] == "_data"
    for body in ({"form": "x"}, {"form": [["a"]]}, {"form": [["a", 1]]}, [], {"form": [["a", "\x00"]]}):
        r = await harness.client.post(f"{path}/preview", json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "form", body
    # without the CSRF header: refused before anything is rendered
    r = await harness.client.post(f"{path}/preview", json={"form": [["title", "x"]]})
    assert r.status_code == 403


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)


@FUZZ
@given(title=any_text, data=any_text, extra=any_text)
async def test_any_preview_is_rendered_or_refused_never_a_5xx(
    harness: Harness, title: str, data: str, extra: str
) -> None:
    if not harness.client.cookies:
        await harness.put_type("t1", ["inapp"], {})
        await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    token = csrf_of((await harness.client.get("/console/types")).text)
    pairs = [["title", title], ["_data", data], ["_extra", extra]]
    r = await _preview(harness, token, "/console/templates/t1/inapp/en", pairs)
    assert r.status_code in (200, 422), r.text


async def test_search_takes_percent_and_underscore_literally(harness: Harness) -> None:
    await harness.put_type("a_b", ["inapp"], {})
    await harness.put_type("axb", ["inapp"], {})
    await harness.put_type("sale", ["inapp"], {}, name="100% Off")
    await logged_in(harness.client, harness.herald, "vic", Role.VIEWER)

    async def found(query: str) -> list[str]:
        text = (await harness.client.get("/console/types", params={"q": query})).text
        return [k for k in ("a_b", "axb", "sale") if f">{k}</a>" in text]

    assert await found("_") == ["a_b"]
    assert await found("%") == ["sale"]
    assert await found("A") == ["a_b", "axb", "sale"]
    assert await found("0% OFF") == ["sale"]


@FUZZ
@given(
    name=any_text,
    names=any_text,
    ttl=any_text,
    cap=any_text,
    merge=any_text,
    accounts=any_text,
)
async def test_any_type_form_is_saved_or_refused_never_a_5xx(
    harness: Harness, name: str, names: str, ttl: str, cap: str, merge: str, accounts: str
) -> None:
    if not harness.client.cookies:
        await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    token = csrf_of((await harness.client.get("/console/types")).text)
    data = {
        **FULL,
        "key": "fuzz",
        "name": name,
        "names": names,
        "ttl_seconds": ttl,
        "cap_max": [cap],
        "cap_channel": [""],
        "cap_per": ["day"],
        "merge_key": merge,
        "accounts": accounts,
        "csrf_token": token,
    }
    r = await harness.client.post(
        "/console/types/fuzz" if await _type_json(harness, "fuzz") else "/console/types", data=data
    )
    assert r.status_code in (303, 422), r.text
    if r.status_code == 422:
        assert 'class="field-error"' in r.text
