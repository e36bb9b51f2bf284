"""Channel account secrets: encrypted at rest, masked on every read, kept on a masked round-trip."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from herald.store import idempotency
from herald.store.secretbox import SecretBox
from herald.store.tables import channel_accounts, idempotency_keys
from herald.store.types import utcnow
from tests.conftest import Harness

PASSWORD = "s3cr3t-Passw0rd-不要泄露"


async def test_secret_is_encrypted_and_masked(harness: Harness) -> None:
    config = {"host": "127.0.0.1", "port": 2525, "sender": "a@example.com", "username": "bot", "password": PASSWORD}
    r = await harness.client.put(
        "/v1/channel-accounts/mail", json={"channel": "email", "config": config}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    assert PASSWORD not in r.text and r.json()["config"]["password"] == "********"
    for url in ("/v1/channel-accounts/mail", "/v1/channel-accounts"):
        r = await harness.client.get(url, headers=harness.admin())
        assert PASSWORD not in r.text and "********" in r.text
    async with harness.herald.db.read() as conn:
        stored = (await conn.execute(select(channel_accounts.c.config_encrypted))).scalar_one()
    assert PASSWORD not in stored and "bot" not in stored

    # a console form sends the mask back: the stored secret is kept (while it goes where it went)
    r = await harness.client.put(
        "/v1/channel-accounts/mail",
        json={"channel": "email", "config": {**config, "password": "********", "timeout": 20}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    async with harness.herald.db.read() as conn:
        stored = (await conn.execute(select(channel_accounts.c.config_encrypted))).scalar_one()
    kept = json.loads(SecretBox(harness.herald.secret_key).open(stored))
    assert kept["password"] == PASSWORD and kept["timeout"] == 20


async def test_mask_without_a_stored_secret_is_refused(harness: Harness) -> None:
    r = await harness.client.put(
        "/v1/channel-accounts/new",
        json={"channel": "webhook", "config": {"url": "https://example.com/h", "secret": "********"}},
        headers=harness.admin(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.secret"


async def test_account_settings_are_validated_against_the_channel_schema(harness: Harness) -> None:
    r = await harness.client.put(
        "/v1/channel-accounts/bad",
        json={"channel": "email", "config": {"host": "h", "port": 99999, "sender": "a@example.com"}},
        headers=harness.admin(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.port"
    r = await harness.client.put(
        "/v1/channel-accounts/bad", json={"channel": "carrier-pigeon", "config": {}}, headers=harness.admin()
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "channel"
    r = await harness.client.get("/v1/channels", headers=harness.reader())
    kinds = {c["name"]: c for c in r.json()["items"]}
    assert {"inapp", "email", "webhook"} <= set(kinds)
    assert "password" in kinds["email"]["secret_fields"]
    assert kinds["email"]["settings_schema"]["properties"]["port"]["type"] == "integer"


async def test_expired_idempotency_keys_are_purged_and_reusable(harness: Harness) -> None:
    now = utcnow()
    async with harness.herald.db.write() as conn:
        claim = await idempotency.claim_key(conn, "k", "key-1", "h1", now=now, stale_after=timedelta(seconds=60))
        assert claim.outcome == "proceed"
        await idempotency.store_response(conn, "k", "key-1", 202, b"{}")
        later = now + timedelta(hours=25)
        again = await idempotency.claim_key(conn, "k", "key-1", "h2", now=later, stale_after=timedelta(seconds=60))
        assert again.outcome == "proceed"  # the 24 h window is over: the key is free again
        await idempotency.store_response(conn, "k", "key-1", 202, b"{}")
        assert await idempotency.purge_expired(conn, later + timedelta(hours=25)) == 1
        assert (await conn.execute(select(idempotency_keys))).first() is None


async def test_abandoned_in_flight_key_can_be_taken_over(harness: Harness) -> None:
    now = utcnow()
    async with harness.herald.db.write() as conn:
        await idempotency.claim_key(conn, "k", "key-2", "h", now=now, stale_after=timedelta(seconds=60))
        busy = await idempotency.claim_key(conn, "k", "key-2", "h", now=now, stale_after=timedelta(seconds=60))
        assert busy.outcome == "in_flight"
        later = now + timedelta(seconds=61)
        taken = await idempotency.claim_key(conn, "k", "key-2", "h", now=later, stale_after=timedelta(seconds=60))
        assert taken.outcome == "proceed"


async def test_an_account_sealed_with_another_key_is_reported_not_a_500(harness: Harness) -> None:
    from sqlalchemy import update

    config = {"url": "https://example.com/h", "secret": "whsec_c2VjcmV0"}
    await harness.client.put(
        "/v1/channel-accounts/hook", json={"channel": "webhook", "config": config}, headers=harness.admin()
    )
    async with harness.herald.db.write() as conn:
        await conn.execute(update(channel_accounts).values(config_encrypted=SecretBox("old key").seal("{}")))
    r = await harness.client.get("/v1/channel-accounts/hook", headers=harness.admin())
    assert r.status_code == 200 and "HERALD_SECRET_KEY" in r.json()["error"] and r.json()["config"] == {}
    # sending the mask back cannot recover it; sending the secret again repairs the account
    r = await harness.client.put(
        "/v1/channel-accounts/hook",
        json={"channel": "webhook", "config": {**config, "secret": "********"}},
        headers=harness.admin(),
    )
    assert r.status_code == 422
    r = await harness.client.put(
        "/v1/channel-accounts/hook", json={"channel": "webhook", "config": config}, headers=harness.admin()
    )
    assert r.status_code == 200 and "error" not in r.json()


async def test_a_list_of_secrets_is_masked_and_kept_on_round_trip(harness: Harness) -> None:
    """Apprise URLs carry credentials: every one is a secret."""
    urls = ["json://127.0.0.1:9/a?token=abc123", "json://127.0.0.1:9/b?token=def456"]
    r = await harness.client.put(
        "/v1/channel-accounts/fanout", json={"channel": "apprise", "config": {"urls": urls}}, headers=harness.admin()
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["urls"] == ["********", "********"] and "abc123" not in r.text
    r = await harness.client.put(
        "/v1/channel-accounts/fanout",
        json={"channel": "apprise", "config": {"urls": ["********", "********"]}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    async with harness.herald.db.read() as conn:
        stored = (await conn.execute(select(channel_accounts.c.config_encrypted))).scalar_one()
    assert "abc123" not in stored
    assert json.loads(SecretBox(harness.herald.secret_key).open(stored))["urls"] == urls
