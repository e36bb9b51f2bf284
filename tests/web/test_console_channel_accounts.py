"""The console's channel-account pages over HTTP on SQLite and PostgreSQL: the form generated from the
channel's settings schema, secrets write-only (never in any page served), each change audited
without secrets, a viewer refused, bad input named next to its field, "send a test" to an SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from markupsafe import escape

from herald.core.console import Role
from herald.store import accounts as account_store
from tests.conftest import Harness
from tests.support import Mailbox, free_port
from tests.web.console_support import audit_rows, logged_in

SECRET = "s3cret-Pa55word-never-shown"
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>'


def _accept_the_account(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"herald", SECRET.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP sink on loopback that requires the account's login: the kept secret is what logs in."""
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=_accept_the_account,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def email_form(csrf: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "channel": "email",
        "original": "",
        "name": "mail-main",
        "group": "mail",
        "default": "on",
        "cfg.host": "127.0.0.1",
        "cfg.port": str(port),
        "cfg.username": "herald",
        "cfg.password": SECRET,
        "cfg.sender": "Herald <noreply@example.com>",
        "cfg.timeout": "5",
        **extra,
    }


async def stored(harness: Harness, name: str) -> dict[str, object] | None:
    async with harness.herald.db.read() as conn:
        return await account_store.get_account(conn, harness.herald.box, name)


async def test_an_admin_creates_edits_tests_and_deletes_an_email_account(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    served: list[str] = []

    form = await client.get("/console/channel-accounts/new?channel=email", headers={"Accept-Language": "en"})
    assert form.status_code == 200
    for name in ("cfg.host", "cfg.port", "cfg.password", "cfg.sender", "cfg.starttls", "cfg.timeout"):
        assert f'name="{name}"' in form.text
    assert 'name="cfg.password" type="password"' in form.text
    served.append(form.text)

    r = await client.post("/console/channel-accounts", data=email_form(csrf, port))
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/console/channel-accounts/mail-main")
    account = await stored(harness, "mail-main")
    assert account is not None and account["config"]["password"] == SECRET  # type: ignore[index]
    assert account["default"] is True and account["group"] == "mail"

    edit = await client.get("/console/channel-accounts/mail-main", headers={"Accept-Language": "en"})
    assert edit.status_code == 200 and 'value="127.0.0.1"' in edit.text
    assert "stored — leave empty to keep" in edit.text
    served.append(edit.text)
    listing = await client.get("/console/channel-accounts?channel=email")
    assert "mail-main" in listing.text
    served.append(listing.text)

    # saved again with the secret left empty: the stored one is kept, the other fields change
    again = email_form(csrf, port, original="mail-main", **{"cfg.password": "", "cfg.timeout": "7"})
    r = await client.post("/console/channel-accounts", data=again)
    assert r.status_code == 303, r.text
    account = await stored(harness, "mail-main")
    assert account is not None and account["config"]["password"] == SECRET  # type: ignore[index]
    assert account["config"]["timeout"] == 7  # type: ignore[index]

    # the test goes through the account to the sink; the provider's answer is on the page
    test = await client.post(
        "/console/channel-accounts/mail-main/test",
        data={"csrf_token": csrf, "address": "someone@example.com"},
        headers={"Accept-Language": "en"},
    )
    assert test.status_code == 200, test.text
    assert "Sent. The provider answered:" in test.text and "provider message id: &lt;" in test.text
    assert len(box.messages) == 1 and box.messages[0]["To"] == "someone@example.com"
    assert "Herald" in str(box.messages[0]["Subject"])
    served.append(test.text)

    r = await client.post("/console/channel-accounts/mail-main/delete", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert await stored(harness, "mail-main") is None

    for page in served:
        assert SECRET not in page
    actions = [(a, t, d) for _, a, t, d in await audit_rows(harness.herald) if a.startswith("channel_account.")]
    assert [a for a, _, _ in actions] == [
        "channel_account.create",
        "channel_account.update",
        "channel_account.test",
        "channel_account.delete",
    ]
    assert all(t == "mail-main" for _, t, _ in actions)
    assert SECRET not in repr(actions)
    assert "password" in actions[0][2]["fields"]  # type: ignore[operator]


async def test_a_failed_test_shows_the_providers_error_as_text(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    closed = free_port()  # nothing listens there
    r = await client.post("/console/channel-accounts", data=email_form(csrf, closed, name="dead"))
    assert r.status_code == 303, r.text
    test = await client.post(
        "/console/channel-accounts/dead/test",
        data={"csrf_token": csrf, "address": "x@example.com"},
        headers={"Accept-Language": "en"},
    )
    assert test.status_code == 200
    assert "Not sent. The provider answered:" in test.text and "RetryableError" in test.text
    assert SECRET not in test.text

    for address, words in (("", "type an address"), ("x" * 400, "at most 320")):
        bad = await client.post("/console/channel-accounts/dead/test", data={"csrf_token": csrf, "address": address})
        assert bad.status_code == 422 and words in bad.text and 'id="err-address"' in bad.text


async def test_bad_input_is_named_next_to_its_field_and_kept_except_the_secret(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    data = email_form(csrf, 25, **{"cfg.port": "seventy", "cfg.sender": "x", "cfg.host": HOSTILE, "name": "bad name!"})
    r = await client.post("/console/channel-accounts", data=data, headers={"Accept-Language": "en"})
    assert r.status_code == 422
    assert 'id="err-config-port"' in r.text and 'id="err-name"' in r.text
    assert str(escape(HOSTILE)) in r.text and HOSTILE not in r.text
    assert SECRET not in r.text
    # the channel's own validation (sender too short) named too, once the form parses
    data = email_form(csrf, 25, **{"cfg.sender": "x"})
    r = await client.post("/console/channel-accounts", data=data)
    assert r.status_code == 422 and 'id="err-config-sender"' in r.text and SECRET not in r.text
    assert await stored(harness, "mail-main") is None
    # an existing name is not overwritten by a create
    assert (await client.post("/console/channel-accounts", data=email_form(csrf, 25))).status_code == 303
    r = await client.post("/console/channel-accounts", data=email_form(csrf, 26))
    assert r.status_code == 422 and "exists already" in r.text
    # unknown channel or account: 404
    assert (await client.get("/console/channel-accounts/new?channel=nope")).status_code == 404
    assert (await client.get("/console/channel-accounts/nope")).status_code == 404


async def test_a_hostile_account_name_and_value_render_as_text(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    r = await client.post(
        "/console/channel-accounts", data=email_form(csrf, 25, **{"cfg.username": HOSTILE, "group": "g1"})
    )
    assert r.status_code == 303, r.text
    page = await client.get("/console/channel-accounts/mail-main")
    assert HOSTILE not in page.text and str(escape(HOSTILE)) in page.text


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_only_admins_reach_channel_accounts(harness: Harness, role: Role) -> None:
    client = harness.client
    admin_key = harness.admin_key
    r = await client.put(
        "/v1/channel-accounts/kept",
        json={
            "channel": "email",
            "config": {"host": "127.0.0.1", "sender": "a@example.com", "username": "u", "password": SECRET},
        },
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert r.status_code == 200, r.text
    csrf = await logged_in(client, harness.herald, "someone", role)
    assert (await client.get("/console/channel-accounts")).status_code == 403
    assert (await client.get("/console/channel-accounts/kept")).status_code == 403
    r = await client.post("/console/channel-accounts", data=email_form(csrf, 25, name="other"))
    assert r.status_code == 403
    r = await client.post("/console/channel-accounts/kept/delete", data={"csrf_token": csrf})
    assert r.status_code == 403
    r = await client.post("/console/channel-accounts/kept/test", data={"csrf_token": csrf, "address": "a@b.c"})
    assert r.status_code == 403
    assert await stored(harness, "other") is None and await stored(harness, "kept") is not None
    assert not [a for _, a, _, _ in await audit_rows(harness.herald) if a.startswith("channel_account.")]


async def test_a_robot_accounts_form_states_the_providers_rate_limit(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "root", Role.ADMIN)
    page = await harness.client.get("/console/channel-accounts/new?channel=dingtalk", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "The provider allows 20 sends per 60 s per account" in page.text
    for secret in ("access_token", "secret"):  # both write-only: password inputs
        assert f'name="cfg.{secret}" type="password"' in page.text


async def test_every_channel_taking_accounts_has_a_form(harness: Harness) -> None:
    await logged_in(harness.client, harness.herald, "root", Role.ADMIN)
    listing = await harness.client.get("/console/channel-accounts")
    taking = sorted(n for n, c in harness.herald.channels.items() if c.requires_account)
    assert taking and all(f'<option value="{n}">' in listing.text for n in taking)
    for name in taking:
        page = await harness.client.get(f"/console/channel-accounts/new?channel={name}")
        assert page.status_code == 200, name
        schema = harness.herald.channels[name].Settings.model_json_schema()
        for field in schema.get("properties", {}):
            assert f'name="cfg.{field}"' in page.text, (name, field)


async def test_a_stored_optional_secret_is_removed_only_when_asked(harness: Harness) -> None:
    client = harness.client
    csrf = await logged_in(client, harness.herald, "root", Role.ADMIN)
    assert (await client.post("/console/channel-accounts", data=email_form(csrf, 25))).status_code == 303
    edit = await client.get("/console/channel-accounts/mail-main")
    assert 'name="clear.password"' in edit.text
    # removing the password alone is refused by the channel (username and password go together) ...
    again = email_form(csrf, 25, original="mail-main", **{"cfg.password": "", "clear.password": "on"})
    r = await client.post("/console/channel-accounts", data=again)
    assert r.status_code == 422 and SECRET not in r.text
    account = await stored(harness, "mail-main")
    assert account is not None and account["config"]["password"] == SECRET  # type: ignore[index]
    # ... with the username, both go
    r = await client.post("/console/channel-accounts", data={**again, "cfg.username": ""})
    assert r.status_code == 303, r.text
    account = await stored(harness, "mail-main")
    assert account is not None and account["config"].get("password") is None  # type: ignore[union-attr]
    assert 'name="clear.password"' not in (await client.get("/console/channel-accounts/mail-main")).text
