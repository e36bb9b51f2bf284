"""Property tests of the channel-account, API-key, event-webhook and user forms: whatever text is typed
in any field, the console answers with a page (saved, or the mistakes named), never a 5xx; what is
stored renders escaped; a test send to any address is answered as text."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from herald.core.console import Role
from herald.store import users as user_store
from tests.conftest import Harness
from tests.web.console_support import logged_in, page_csrf

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)


async def _admin(harness: Harness, path: str) -> str:
    if not harness.client.cookies.get("herald_console"):
        await logged_in(harness.client, harness.herald, "root", Role.ADMIN)
    return await page_csrf(harness.client, path)


@FUZZ
@given(name=any_text, host=any_text, port=any_text, sender=any_text, timeout=any_text, group=any_text)
async def test_any_channel_account_form_is_saved_or_named_never_a_5xx(
    harness: Harness, name: str, host: str, port: str, sender: str, timeout: str, group: str
) -> None:
    token = await _admin(harness, "/console/channel-accounts")
    form = {
        "csrf_token": token,
        "channel": "email",
        "original": "",
        "name": name,
        "group": group,
        "cfg.host": host,
        "cfg.port": port,
        "cfg.sender": sender,
        "cfg.timeout": timeout,
    }
    r = await harness.client.post("/console/channel-accounts", data=form)
    assert r.status_code in (303, 422), (r.status_code, r.text[:300])
    if r.status_code == 303:
        page = await harness.client.get(r.headers["location"])
        assert page.status_code == 200
        if "<" in host:
            assert host not in page.text and str(escape(host)) in page.text


@FUZZ
@given(address=any_text)
async def test_any_test_address_is_answered_as_text(harness: Harness, address: str) -> None:
    token = await _admin(harness, "/console/channel-accounts")
    if "dead" not in (await harness.client.get("/console/channel-accounts")).text:
        form = {"csrf_token": token, "channel": "email", "original": "", "name": "dead"}
        form |= {"cfg.host": "127.0.0.1", "cfg.port": "9", "cfg.sender": "a@example.com", "cfg.timeout": "2"}
        assert (await harness.client.post("/console/channel-accounts", data=form)).status_code == 303
    r = await harness.client.post("/console/channel-accounts/dead/test", data={"csrf_token": token, "address": address})
    assert r.status_code in (200, 422), (r.status_code, r.text[:300])
    if r.status_code == 200:
        assert 'id="chacc-answer"' in r.text


@FUZZ
@given(name=any_text, url=any_text, secret=any_text, events=st.lists(any_text, max_size=3))
async def test_any_webhook_and_key_form_is_saved_or_named_never_a_5xx(
    harness: Harness, name: str, url: str, secret: str, events: list[str]
) -> None:
    token = await _admin(harness, "/console/event-webhooks")
    form = {"csrf_token": token, "original": "", "name": name, "url": url, "secret": secret, "events": events}
    r = await harness.client.post("/console/event-webhooks", data=form)
    assert r.status_code in (303, 422), (r.status_code, r.text[:300])
    if r.status_code == 422:  # the form comes back without the secret typed in it
        secret_input = re.search(r'<input id="hook-secret"[^>]*>', r.text)
        assert secret_input and "value=" not in secret_input.group()
    r = await harness.client.post("/console/api-keys", data={"csrf_token": token, "name": name, "scopes": events})
    assert r.status_code in (200, 422), (r.status_code, r.text[:300])


@FUZZ
@given(
    field=st.sampled_from(["name", "email", "phone", "locale", "timezone", "tags", "channels", "data"]),
    value=any_text,
)
async def test_any_profile_edit_is_saved_or_named_never_a_5xx(harness: Harness, field: str, value: str) -> None:
    async with harness.herald.db.write() as conn:
        await user_store.upsert_user(conn, "fuzzed", {})
    if not harness.client.cookies.get("herald_console"):
        await logged_in(harness.client, harness.herald, "otto", Role.OPERATOR)
    token = await page_csrf(harness.client, "/console/users?id=fuzzed")
    r = await harness.client.post("/console/users/edit", data={"csrf_token": token, "id": "fuzzed", field: value})
    assert r.status_code in (303, 422), (r.status_code, r.text[:300])
    page = await harness.client.get("/console/users?id=fuzzed")
    assert page.status_code == 200
    if "<" in value:
        assert value not in page.text
