"""``/console/channel-accounts``: channel accounts (admins only). List by channel; create and edit with
a form generated from the channel's settings schema (``schema_form.py``); delete; "send a test".

Secrets are write-only: the form never holds one (a stored secret reads "stored", an empty secret
field keeps it), pages show the config as the API does (``engine.accounts.masked_config``), and the
audit log records which fields changed, never their values. Saving goes through the same
``engine.accounts.save_account`` as ``PUT /v1/channel-accounts/{name}``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from herald.api.schemas import KEY_PATTERN
from herald.channels.base import Channel
from herald.core.errors import Invalid, NotFound
from herald.engine import account_probe
from herald.engine import accounts as account_engine
from herald.store import accounts as account_store
from herald.store.console import audit
from herald.web.console.auth import Admin, Console, ConsoleDenied
from herald.web.console.render import redirect, render
from herald.web.console.schema_form import SchemaField, config_from_form, schema_fields, shown_value, typed_values

router = APIRouter(include_in_schema=False)
BASE = "/console/channel-accounts"
NAME = re.compile(KEY_PATTERN)


def _account_channels(console: Console) -> dict[str, Channel]:
    return {name: c for name, c in console.herald.channels.items() if c.requires_account}


def _channel(console: Console, name: str) -> Channel:
    channel = _account_channels(console).get(name)
    if channel is None:
        raise ConsoleDenied(404, "error.not_found")
    return channel


def _fields(channel: Channel) -> list[SchemaField]:
    return schema_fields(channel.Settings.model_json_schema(), channel.Settings.secret_fields())


async def _load(console: Console, name: str) -> dict[str, Any]:
    async with console.herald.db.read() as conn:
        account = await account_store.get_account(conn, console.herald.box, name[:200])
    if account is None:
        raise ConsoleDenied(404, "error.not_found")
    return account


def _stored_secrets(console: Console, account: dict[str, Any] | None) -> set[str]:
    if account is None or not account["config"]:
        return set()
    secrets = account_engine.secret_fields(console.herald.channels, account["channel"])
    return {k for k in secrets if account["config"].get(k) not in (None, "", [])}


@router.get(BASE)
async def list_page(console: Admin, channel: str = "") -> Response:
    channels = _account_channels(console)
    chosen = channel if channel in channels else ""
    async with console.herald.db.read() as conn:
        rows = await account_store.list_accounts(conn, console.herald.box, chosen or None)
    return render(
        console,
        "channel_accounts.html",
        title="chacc.title",
        nav="channel_accounts",
        rows=rows,
        channels=sorted(channels),
        chosen=chosen,
    )


def _form_page(
    console: Console,
    channel: Channel,
    account: dict[str, Any] | None,
    *,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    errors: list[tuple[str, str]] | None = None,
    answer: account_probe.TestAnswer | None = None,
    address: str = "",
) -> Response:
    fields = _fields(channel)
    if typed is None:
        masked = account_engine.masked_config(console.herald.channels, account) if account else None
        typed = {
            "name": account["name"] if account else "",
            "group": (account or {}).get("group") or "",
            "default": bool(account and account["default"]),
            "config": {f.name: shown_value(f, masked) for f in fields},
        }
    by_field: dict[str, list[str]] = {}
    for field, message in errors or []:
        by_field.setdefault(field, []).append(message)
    known = {"name", "group", "default", "channel", "address"} | {f"config.{f.name}" for f in fields}
    return render(
        console,
        "channel_account.html",
        status=status,
        title="chacc.title",
        nav="channel_accounts",
        channel=channel,
        subject=account,
        fields=fields,
        typed=typed,
        field_errors=by_field,
        errors=[f"{f}: {m}" for f, m in errors or [] if f not in known],
        stored_secrets=_stored_secrets(console, account),
        answer=answer,
        address=address,
        callback_url=(
            account_engine.callback_url(console.herald.secret_key, console.herald.channels, account)
            if account
            else None
        ),
    )


@router.get(BASE + "/new")
async def new_page(console: Admin, channel: str = "") -> Response:
    return _form_page(console, _channel(console, channel), None)


@router.get(BASE + "/{name}")
async def edit_page(name: str, console: Admin) -> Response:
    account = await _load(console, name)
    return _form_page(console, _channel(console, account["channel"]), account)


@router.post(BASE)
async def save(console: Admin) -> Response:
    """Create (``original`` empty) or save the account the form was opened for."""
    form = console.form
    channel = _channel(console, form.get("channel"))
    original = form.get("original")
    existing = await _load(console, original) if original else None
    name = original or form.get("name").strip()
    group = form.get("group").strip() or None
    fields = _fields(channel)
    config, errors = config_from_form(fields, form, secrets_stored=_stored_secrets(console, existing))
    if not NAME.match(name):
        errors.append(("name", "letters, digits and . _ : - (at most 200), starting with a letter or digit"))
    if group is not None and not NAME.match(group):
        errors.append(("group", "letters, digits and . _ : - (at most 200), starting with a letter or digit"))
    if not original and not errors:
        async with console.herald.db.read() as conn:
            if await account_store.get_account(conn, console.herald.box, name) is not None:
                errors.append(("name", "an account with this name exists already"))
    typed = {
        "name": name[:200],
        "group": (group or "")[:200],
        "default": "default" in form,
        "config": typed_values(fields, form),
    }
    if errors:
        return _form_page(console, channel, existing, status=422, typed=typed, errors=errors)
    account = account_engine.AccountInput(
        name=name, channel=channel.name, config=config, default="default" in form, group=group
    )
    try:
        await account_engine.save_account(console.herald.db, console.herald.box, console.herald.channels, account)
    except Invalid as exc:
        return _form_page(console, channel, existing, status=422, typed=typed, errors=exc.errors)
    async with console.herald.db.write() as conn:
        await audit(
            conn,
            console.account,
            "channel_account.update" if existing else "channel_account.create",
            name,
            {"channel": channel.name, "default": account.default, "group": group, "fields": sorted(config)},
        )
    return redirect(f"{BASE}/{name}", notice="notice.chacc_saved")


@router.post(BASE + "/{name}/delete")
async def delete(name: str, console: Admin) -> Response:
    account = await _load(console, name)
    async with console.herald.db.write() as conn:
        if not await account_store.delete_account(conn, account["name"]):
            raise ConsoleDenied(404, "error.not_found")
        await audit(conn, console.account, "channel_account.delete", account["name"], {"channel": account["channel"]})
    return redirect(BASE, notice="notice.chacc_deleted")


@router.post(BASE + "/{name}/test")
async def send_test(name: str, console: Admin) -> Response:
    """One real message through the account to the typed address; the provider's answer shown."""
    account = await _load(console, name)
    channel = _channel(console, account["channel"])
    address = console.form.get("address")
    herald = console.herald
    try:
        answer = await account_probe.send_test(
            herald.db,
            herald.box,
            herald.channels,
            account["name"],
            address,
            allow_private_urls=herald.settings.allow_private_urls,
        )
    except NotFound as exc:
        raise ConsoleDenied(404, "error.not_found") from exc
    except Invalid as exc:
        return _form_page(console, channel, account, status=422, errors=exc.errors, address=address[:400])
    async with herald.db.write() as conn:
        await audit(
            conn, console.account, "channel_account.test", account["name"], {"channel": channel.name, "ok": answer.ok}
        )
    return _form_page(console, channel, account, answer=answer, address=address[:400])
