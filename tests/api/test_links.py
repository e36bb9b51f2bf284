"""Links that would run script in a user's browser are refused where they come in (422 naming the
field): in-app templates, triggers whose data renders them, announcements; a link rendered per
recipient (from their profile) cannot be refused in the request and is dropped from the item."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_bad_input import assert_names, inbox_of
from tests.conftest import Harness

HOSTILE = ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,x", "vbscript:x"]


@pytest.mark.parametrize("url", HOSTILE)
@pytest.mark.parametrize(
    "fields,field",
    [
        (lambda u: {"title": "t", "action_url": u}, "action_url"),
        (
            lambda u: {"title": "t", "actions": [{"label": "a", "url": "/ok"}, {"label": "b", "url": u}]},
            "actions.1.url",
        ),
        (lambda u: {"title": "t", "action_url": u + "${x}"}, "action_url"),
    ],
)
async def test_inapp_template_with_a_script_link_is_422(harness: Harness, url: str, fields: Any, field: str) -> None:
    await harness.put_type("link.t", ["inapp"], {"inapp": {"title": "t"}})
    r = await harness.client.put(
        "/v1/notification-types/link.t/templates/inapp", json=fields(url), headers=harness.admin()
    )
    assert_names(r, 422, field)
    stored = (await harness.client.get("/v1/notification-types/link.t", headers=harness.reader())).json()
    assert "javascript" not in str(stored).lower() and "data:" not in str(stored)


async def test_trigger_whose_data_renders_a_script_link_is_422(harness: Harness) -> None:
    await harness.put_type(
        "link.d", ["inapp"], {"inapp": {"title": "t", "action_url": "${u}", "actions": [{"label": "a", "url": "${a}"}]}}
    )
    r = await harness.trigger({"type": "link.d", "to": ["alice"], "data": {"u": "/fine", "a": "javascript:alert(1)"}})
    assert_names(r, 422, "templates.inapp.actions.0.url")
    r = await harness.trigger({"type": "link.d", "to": ["alice"], "data": {"u": "data:text/html,x", "a": "/a"}})
    assert_names(r, 422, "templates.inapp.action_url")
    assert await inbox_of(harness, "alice") == []
    r = await harness.trigger({"type": "link.d", "to": ["alice"], "data": {"u": "https://e.com/1", "a": "/a"}})
    assert r.status_code == 202, r.text
    (item,) = await inbox_of(harness, "alice")
    assert item["action_url"] == "https://e.com/1" and item["actions"] == [{"label": "a", "url": "/a"}]


async def test_a_link_rendered_from_the_recipient_is_dropped_not_stored(harness: Harness) -> None:
    await harness.put_type("link.r", ["inapp"], {"inapp": {"title": "t", "action_url": "${recipient.data.site}"}})
    to = [
        {"id": "mallory", "data": {"site": "javascript:alert(1)"}},
        {"id": "bob", "data": {"site": "https://b.example"}},
    ]
    r = await harness.trigger({"type": "link.r", "to": to})
    assert r.status_code == 202, r.text
    await harness.drain()
    (evil,) = await inbox_of(harness, "mallory")
    (good,) = await inbox_of(harness, "bob")
    assert evil["action_url"] is None
    assert good["action_url"] == "https://b.example"


@pytest.mark.parametrize("url", HOSTILE)
async def test_announcement_with_a_script_link_is_422(harness: Harness, url: str) -> None:
    r = await harness.client.post("/v1/announcements", json={"title": "t", "action_url": url}, headers=harness.admin())
    assert_names(r, 422, "action_url")
    r = await harness.client.post(
        "/v1/announcements", json={"title": "t", "kind": "banner", "action_url": "/sale"}, headers=harness.admin()
    )
    assert r.status_code == 201, r.text
    ann = r.json()["id"]
    r = await harness.client.patch(f"/v1/announcements/{ann}", json={"action_url": url}, headers=harness.admin())
    assert_names(r, 422, "action_url")
    r = await harness.client.patch(
        f"/v1/announcements/{ann}", json={"media_url": "data:image/svg+xml,<svg/>"}, headers=harness.admin()
    )
    assert_names(r, 422, "media_url")
    r = await harness.client.get(f"/v1/announcements/{ann}", headers=harness.reader())
    assert r.json()["action_url"] == "/sale"
