"""Channel accounts: saving one (secrets kept across a masked round-trip, settings checked by the
channel), where its provider posts delivery reports, and which accounts a type or trigger may name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels.base import Channel, ChannelSettings, is_masked
from herald.core.errors import Invalid
from herald.core.urls import MASK
from herald.engine.receipts import callback_token
from herald.store import accounts as account_store
from herald.store.db import Database
from herald.store.secretbox import SecretBox

__all__ = ["MASK", "is_masked"]  # MASK: what a secret reads as; sent back unchanged, "keep the stored one"


def reveal(settings: ChannelSettings) -> dict[str, Any]:
    """The settings as stored: secrets in the clear (the store encrypts the whole config)."""
    out = settings.model_dump(mode="json")
    for key in settings.secret_fields():
        value = getattr(settings, key)
        if isinstance(value, list):
            out[key] = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
        else:
            out[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return out


@dataclass(frozen=True)
class AccountInput:
    """An account as an admin sends it: ``config`` may hold masks for secrets to keep."""

    name: str
    channel: str
    config: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False
    group: str | None = None
    """Routing group: accounts of one group are interchangeable providers, and a retry may fail
    over between them (and only them); an account without a group never fails over."""


def secret_fields(channels: Mapping[str, Channel], channel: str) -> list[str]:
    """The settings fields of ``channel`` that are write-only (none for a channel no longer installed)."""
    kind = channels.get(channel)
    return kind.Settings.secret_fields() if kind else []


def masked_config(channels: Mapping[str, Channel], account: Mapping[str, Any]) -> dict[str, Any]:
    """An account's config as every read shows it: its channel masks the secrets (secret fields,
    and secrets inside other fields such as a webhook's URL token and headers). A channel no longer
    installed cannot say which fields are secret: all of them read masked."""
    config = account["config"] or {}
    kind = channels.get(account["channel"])
    if kind is None:
        return {key: MASK for key in config}
    return kind.Settings.masked(config)


def callback_url(secret_key: str, channels: Mapping[str, Channel], account: Mapping[str, Any]) -> str | None:
    """Where the provider should post delivery reports for this account (path and token), or
    None when its channel takes none."""
    kind = channels.get(account["channel"])
    if kind is None or kind.receipt_ack is None:
        return None
    token = callback_token(secret_key, account["channel"], account["name"])
    return f"/v1/callbacks/{account['channel']}/{account['name']}?token={token}"


def _channel_taking_accounts(channels: Mapping[str, Channel], name: str) -> Channel:
    channel = channels.get(name)
    if channel is None:
        raise Invalid([("channel", f"unknown channel '{name}'")])
    if not channel.requires_account:
        raise Invalid([("channel", f"channel '{name}' takes no account")])
    return channel


async def save_account(
    db: Database, box: SecretBox, channels: Mapping[str, Channel], account: AccountInput
) -> dict[str, Any]:
    """Create or replace an account; Invalid naming ``channel`` or ``config.<field>`` when it is refused."""
    channel = _channel_taking_accounts(channels, account.channel)
    async with db.write() as conn:
        existing = await account_store.get_account(conn, box, account.name)
        # what was stored for another channel under this name is no secret of this one
        stored = existing["config"] if existing and existing["channel"] == account.channel else None
        # a masked secret sent back unchanged (a console form round-trip) keeps the stored one
        config = channel.Settings.keep_masked(dict(account.config), stored)
        if stored:
            channel.Settings.refuse_moved_secrets(account.config, config, stored)
        config = channel.complete_settings(config, stored)
        try:
            settings = channel.Settings.model_validate(config)
        except ValidationError as exc:
            raise Invalid([("config." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]) from exc
        return await account_store.put_account(
            conn, box, account.name, account.channel, reveal(settings), account.default, group=account.group
        )


def _usable_channels(channels: Mapping[str, Channel], channel: str) -> tuple[str, ...]:
    """The channels whose accounts can send ``channel``: its providers for a logical channel (``sms``)."""
    kind = channels.get(channel)
    return kind.routes_over if kind is not None and kind.routes_over else (channel,)


async def check_account_choice(
    conn: AsyncConnection,
    box: SecretBox,
    channels: Mapping[str, Channel],
    accounts: Mapping[str, Sequence[str]],
    allowed: Sequence[str],
    *,
    field: str = "accounts",
) -> dict[str, list[str]]:
    """``{channel: [account name, ...]}`` checked against the channels it is for (``allowed``) and the
    accounts that exist; returns it without repeated names, or raises Invalid naming
    ``<field>.<channel>`` (not one of ``allowed``) or ``<field>.<channel>.<i>`` (no such account)."""
    errors: list[tuple[str, str]] = []
    wanted: dict[str, tuple[str, ...]] = {}
    for channel in accounts:
        if channel not in allowed:
            listed = ", ".join(allowed) or "none"
            errors.append((f"{field}.{channel}", f"'{channel}' is not one of the channels here ({listed})"))
        elif channel in channels:  # an unknown channel among ``allowed`` is the caller's to name
            wanted[channel] = _usable_channels(channels, channel)
    usable = sorted({c for cs in wanted.values() for c in cs})
    existing = {a.name: a.channel for a in await account_store.accounts_for(conn, box, usable)}
    for channel, of in wanted.items():
        for i, name in enumerate(accounts[channel]):
            if existing.get(name) in of:
                continue
            other = await account_store.get_account(conn, box, name)
            kinds = " or ".join(f"'{c}'" for c in of)
            errors.append(
                (
                    f"{field}.{channel}.{i}",
                    f"account '{name}' is a '{other['channel']}' account, not {kinds}"
                    if other is not None
                    else f"no {kinds} account named '{name}'",
                )
            )
    if errors:
        raise Invalid(errors)
    return {channel: list(dict.fromkeys(names)) for channel, names in accounts.items()}
