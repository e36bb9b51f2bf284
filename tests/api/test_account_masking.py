"""Webhook accounts: header values and the tokens inside the URL read masked, and come back as stored
when an admin sends the masked form back (issue 7, item 5)."""

from __future__ import annotations

from typing import Any

from herald.core.urls import MASK
from herald.store import accounts as account_store
from herald.store import event_webhooks
from tests.conftest import Harness
from tests.support import SECRET

BEARER = "Bearer sk-live-4f9Qm2Zx7Lp0"
URL = "https://bot:pw-9Hx2Lq@hooks.example.com/in/hooks/9f8e7d6c5b4a39281706?token=q-5Tg7Yh3Kd&v=2"


async def put(h: Harness, config: dict[str, Any]) -> Any:
    return await h.client.put(
        "/v1/channel-accounts/hook", json={"channel": "webhook", "config": config}, headers=h.admin()
    )


async def stored_config(h: Harness) -> dict[str, Any]:
    async with h.herald.db.read() as conn:
        account = await account_store.get_account(conn, h.herald.box, "hook")
    assert account is not None
    return dict(account["config"])


async def test_headers_and_url_tokens_read_masked(harness: Harness) -> None:
    config = {"url": URL, "secret": SECRET, "headers": {"Authorization": BEARER, "X-Team": "ops"}}
    r = await put(harness, config)
    assert r.status_code == 200, r.text
    reads = [r.text]
    for path in ("/v1/channel-accounts/hook", "/v1/channel-accounts", "/v1/channel-accounts?channel=webhook"):
        got = await harness.client.get(path, headers=harness.admin())
        assert got.status_code == 200
        reads.append(got.text)
    for text in reads:
        for secret in ("sk-live-4f9Qm2Zx7Lp0", "pw-9Hx2Lq", "q-5Tg7Yh3Kd", "9f8e7d6c5b4a39281706", SECRET):
            assert secret not in text
    shown = r.json()["config"]
    assert shown["headers"] == {"Authorization": MASK, "X-Team": MASK}
    assert shown["url"] == f"https://bot:{MASK}@hooks.example.com/in/hooks/{MASK}?token={MASK}&v={MASK}"


async def test_the_masked_form_sent_back_keeps_what_is_stored(harness: Harness) -> None:
    config = {"url": URL, "secret": SECRET, "headers": {"Authorization": BEARER}}
    shown = (await put(harness, config)).json()["config"]
    r = await put(harness, {**shown, "timeout": 5, "headers": {**shown["headers"], "X-New": "1"}})
    assert r.status_code == 200, r.text
    kept = await stored_config(harness)
    assert kept["url"] == URL and kept["secret"] == SECRET and kept["timeout"] == 5
    assert kept["headers"] == {"Authorization": BEARER, "X-New": "1"}
    # a header name in another case still finds its stored value
    r = await put(harness, {**shown, "headers": {"authorization": MASK}})
    assert r.status_code == 200, r.text
    assert (await stored_config(harness))["headers"] == {"authorization": BEARER}


async def test_a_new_url_replaces_the_stored_one_with_the_secret_given_again(harness: Harness) -> None:
    await put(harness, {"url": URL, "secret": SECRET})
    # a kept (masked) secret never follows a new destination: it would go to a server of the editor's choosing
    r = await put(harness, {"url": "https://other.example.com/in?sig=abc", "secret": MASK})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.secret", r.text
    assert "url changed" in r.json()["errors"][0]["message"]
    assert (await stored_config(harness))["url"] == URL
    other = SECRET[:-4] + "abcd"
    r = await put(harness, {"url": "https://other.example.com/in?sig=abc", "secret": other})
    assert r.status_code == 200, r.text
    assert (await stored_config(harness))["url"] == "https://other.example.com/in?sig=abc"


async def test_a_kept_smtp_password_does_not_follow_a_new_host(harness: Harness) -> None:
    base = {"host": "smtp.example.com", "port": 587, "username": "mailer", "password": "S3CRET-PASSWORD"}
    base["sender"] = "Herald <noreply@example.com>"
    r = await harness.client.put(
        "/v1/channel-accounts/mail", json={"channel": "email", "config": base}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    shown = r.json()["config"]
    for change in ({"host": "127.0.0.1"}, {"port": 2525}, {"username": "someone-else"}):
        r = await harness.client.put(
            "/v1/channel-accounts/mail",
            json={"channel": "email", "config": {**shown, **change}},
            headers=harness.admin(),
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.password", (change, r.text)
    # the same destination (the port as text is the same port) keeps the stored password
    r = await harness.client.put(
        "/v1/channel-accounts/mail",
        json={"channel": "email", "config": {**shown, "port": "587", "timeout": 20}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text


async def test_a_mask_that_cannot_be_filled_in_is_422(harness: Harness) -> None:
    await put(harness, {"url": URL, "secret": SECRET, "headers": {"Authorization": BEARER}})
    # the host changed but the token is still the mask: Herald cannot tell what was meant
    r = await put(harness, {"url": f"https://elsewhere.example.com/in?token={MASK}", "secret": MASK})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.url"
    r = await put(harness, {"url": URL, "secret": MASK, "headers": {"X-Api-Key": MASK}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.headers.X-Api-Key"
    assert (await stored_config(harness))["headers"] == {"Authorization": BEARER}


async def test_event_webhook_urls_read_masked_and_round_trip(harness: Harness) -> None:
    url = "https://hooks.example.com/herald?token=ev-8Kd2Lq7Zx"
    body = {"url": url, "secret": "whsec-plain-secret", "events": ["message.sent"]}
    r = await harness.client.put("/v1/event-webhooks/ops", json=body, headers=harness.admin())
    assert r.status_code == 200, r.text
    listed = await harness.client.get("/v1/event-webhooks", headers=harness.admin())
    for text in (r.text, listed.text):
        assert "ev-8Kd2Lq7Zx" not in text and "whsec-plain-secret" not in text
    shown = r.json()
    assert shown["url"] == f"https://hooks.example.com/herald?token={MASK}"
    r = await harness.client.put(
        "/v1/event-webhooks/ops", json={**body, "url": shown["url"], "secret": MASK}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    async with harness.herald.db.read() as conn:
        hook = await event_webhooks.get_event_webhook(conn, harness.herald.box, "ops")
    assert hook is not None and hook["url"] == url and hook["secret"] == "whsec-plain-secret"
    r = await harness.client.put(
        "/v1/event-webhooks/ops",
        json={**body, "url": f"https://other.example.com/?token={MASK}"},
        headers=harness.admin(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url"
