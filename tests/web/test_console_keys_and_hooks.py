"""The console's API-key and event-webhook pages over HTTP on SQLite and PostgreSQL: a key shown once
and working, revoked and refused; a viewer cannot create a key; webhook secrets write-only; every
change audited without a key or a secret; bad input named next to its field; hostile text escaped."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from herald.core.console import Role
from herald.store import event_webhooks as hook_store
from herald.store.apikeys import list_api_keys
from tests.conftest import Harness
from tests.web.console_support import audit_rows, logged_in

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
HOOK_SECRET = "whsec-never-shown-7f3a"
URL_TOKEN = "tok3n-in-the-url-9c2e"
KEY = re.compile(r'<code class="the-key" id="new-key">(hk_[A-Za-z0-9_-]+)</code>')


async def key_rows(harness: Harness) -> list[dict[str, object]]:
    async with harness.herald.db.read() as conn:
        return await list_api_keys(conn)


# -- API keys -------------------------------------------------------------------------------------------


async def test_a_key_is_shown_once_works_and_is_refused_once_revoked(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    r = await client.post("/console/api-keys", data={"csrf_token": csrf, "name": "billing", "scopes": ["read"]})
    assert r.status_code == 200, r.text
    found = KEY.search(r.text)
    assert found, r.text
    key = found.group(1)
    assert r.headers["cache-control"] == "no-store"

    # it works, with the scope it was given
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/channels", headers=auth)).status_code == 200
    assert (await client.get("/v1/api-keys", headers=auth)).status_code == 403

    listing = await client.get("/console/api-keys")
    assert key not in listing.text and key[:10] in listing.text and "billing" in listing.text
    (row,) = [k for k in await key_rows(harness) if k["name"] == "billing"]
    assert row["scopes"] == ["read"]

    r = await client.post(f"/console/api-keys/{row['id']}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert (await client.get("/v1/channels", headers=auth)).status_code == 401
    assert (await client.post(f"/console/api-keys/{row['id']}/revoke", data={"csrf_token": csrf})).status_code == 404

    actions = [(a, t, d) for _, a, t, d in await audit_rows(harness.herald) if a.startswith("api_key.")]
    assert [(a, t) for a, t, _ in actions] == [("api_key.create", row["id"]), ("api_key.revoke", row["id"])]
    assert actions[0][2] == {"name": "billing", "scopes": ["read"]}
    assert key not in repr(await audit_rows(harness.herald))


async def test_bad_key_input_is_named_and_kept(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    before = len(await key_rows(harness))
    r = await client.post("/console/api-keys", data={"csrf_token": csrf, "name": "", "scopes": ["root"]})
    assert r.status_code == 422 and 'id="err-name"' in r.text and 'id="err-scopes"' in r.text
    r = await client.post(
        "/console/api-keys", data={"csrf_token": csrf, "name": HOSTILE, "scopes": []}, headers={"Accept-Language": "en"}
    )
    assert r.status_code == 422 and "Choose at least one" in r.text
    assert HOSTILE not in r.text and str(escape(HOSTILE)) in r.text
    assert len(await key_rows(harness)) == before
    # a hostile name, once created, is listed as text
    r = await client.post("/console/api-keys", data={"csrf_token": csrf, "name": HOSTILE, "scopes": ["send"]})
    assert r.status_code == 200 and HOSTILE not in r.text and str(escape(HOSTILE)) in r.text


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_only_admins_reach_api_keys(harness: Harness, role: Role) -> None:
    client = harness.client
    before = await key_rows(harness)
    csrf = await logged_in(client, harness.herald, "someone", role)
    assert (await client.get("/console/api-keys")).status_code == 403
    r = await client.post("/console/api-keys", data={"csrf_token": csrf, "name": "sneaky", "scopes": ["admin"]})
    assert r.status_code == 403 and "hk_" not in r.text
    r = await client.post(f"/console/api-keys/{before[0]['id']}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 403
    assert await key_rows(harness) == before
    assert not [a for _, a, _, _ in await audit_rows(harness.herald) if a.startswith("api_key.")]


# -- event webhooks -------------------------------------------------------------------------------------


def hook_form(csrf: str, **extra: object) -> dict[str, object]:
    return {
        "csrf_token": csrf,
        "original": "",
        "name": "crm",
        "url": f"https://crm.example.com/herald?token={URL_TOKEN}",
        "secret": HOOK_SECRET,
        "events": ["message.sent", "message.failed"],
        **extra,
    }


async def stored_hook(harness: Harness, name: str) -> dict[str, object] | None:
    async with harness.herald.db.read() as conn:
        return await hook_store.get_event_webhook(conn, harness.herald.box, name)


async def test_an_admin_creates_edits_and_deletes_an_event_webhook(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    served = [(await client.get("/console/event-webhooks/new")).text]
    r = await client.post("/console/event-webhooks", data=hook_form(csrf))
    assert r.status_code == 303, r.text
    hook = await stored_hook(harness, "crm")
    assert hook is not None and hook["secret"] == HOOK_SECRET and URL_TOKEN in str(hook["url"])
    assert hook["events"] == ["message.failed", "message.sent"]

    edit = await client.get("/console/event-webhooks/crm")
    listing = await client.get("/console/event-webhooks")
    assert edit.status_code == 200 and listing.status_code == 200 and "crm.example.com" in listing.text
    served += [edit.text, listing.text]
    # sent back as shown (URL redacted, secret empty): both kept, the events changed
    shown_url = re.search(r'id="hook-url" name="url" required maxlength="2048" value="([^"]*)"', edit.text)
    assert shown_url
    url_back = shown_url.group(1).replace("&amp;", "&")
    r = await client.post(
        "/console/event-webhooks",
        data=hook_form(csrf, original="crm", url=url_back, secret="", events=["message.read"]),
    )
    assert r.status_code == 303, r.text
    hook = await stored_hook(harness, "crm")
    assert hook is not None and hook["secret"] == HOOK_SECRET and URL_TOKEN in str(hook["url"])
    assert hook["events"] == ["message.read"]

    r = await client.post("/console/event-webhooks/crm/delete", data={"csrf_token": csrf})
    assert r.status_code == 303 and await stored_hook(harness, "crm") is None
    assert (await client.get("/console/event-webhooks/crm")).status_code == 404

    for page in served:
        assert HOOK_SECRET not in page and URL_TOKEN not in page
    rows = [(a, t, d) for _, a, t, d in await audit_rows(harness.herald) if a.startswith("event_webhook.")]
    assert [a for a, _, _ in rows] == ["event_webhook.create", "event_webhook.update", "event_webhook.delete"]
    assert rows[0][2]["signing_key_changed"] is True and rows[1][2]["signing_key_changed"] is False
    assert HOOK_SECRET not in repr(rows) and URL_TOKEN not in repr(rows)


async def test_bad_webhook_input_is_named_next_to_its_field(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    r = await client.post(
        "/console/event-webhooks",
        data=hook_form(csrf, name="bad name", url="ftp://x", secret="", events=["message.nope"]),
    )
    assert r.status_code == 422
    for field in ("name", "url", "secret", "events"):
        assert f'id="err-{field}"' in r.text, field
    assert HOOK_SECRET not in r.text
    r = await client.post("/console/event-webhooks", data=hook_form(csrf, url="https://x.example/" + HOSTILE))
    assert r.status_code == 303
    page = await client.get("/console/event-webhooks")
    assert HOSTILE not in page.text
    # a create never overwrites an existing webhook
    r = await client.post("/console/event-webhooks", data=hook_form(csrf, secret="other-secret"))
    assert r.status_code == 422 and 'id="err-name"' in r.text
    hook = await stored_hook(harness, "crm")
    assert hook is not None and hook["secret"] == HOOK_SECRET


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_only_admins_reach_event_webhooks(harness: Harness, role: Role) -> None:
    client = harness.client
    r = await client.put(
        "/v1/event-webhooks/kept",
        json={"url": "https://a.example/h", "secret": HOOK_SECRET, "events": ["message.sent"]},
        headers={"Authorization": f"Bearer {harness.admin_key}"},
    )
    assert r.status_code == 200, r.text
    csrf = await logged_in(client, harness.herald, "someone", role)
    assert (await client.get("/console/event-webhooks")).status_code == 403
    assert (await client.get("/console/event-webhooks/kept")).status_code == 403
    assert (await client.post("/console/event-webhooks", data=hook_form(csrf, name="x"))).status_code == 403
    assert (await client.post("/console/event-webhooks/kept/delete", data={"csrf_token": csrf})).status_code == 403
    assert await stored_hook(harness, "x") is None and await stored_hook(harness, "kept") is not None
