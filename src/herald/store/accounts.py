"""Channel accounts: the whole config is encrypted at rest; callers see plain dicts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.records import Account
from herald.store.secretbox import SecretBox
from herald.store.tables import channel_accounts
from herald.store.types import utcnow


def _decode(row: Any, box: SecretBox) -> dict[str, Any]:
    """The account with its config in the clear; ``config`` is None (and ``error`` says why)
    when it cannot be decrypted, e.g. after HERALD_SECRET_KEY changed."""
    try:
        config, error = json.loads(box.open(row["config_encrypted"])), None
    except ValueError as exc:
        config, error = None, f"account '{row['name']}': {exc}"
    return {
        "name": row["name"],
        "channel": row["channel"],
        "config": config,
        "error": error,
        "default": bool(row["is_default"]),
        "group": row["routing_group"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def put_account(
    conn: AsyncConnection,
    box: SecretBox,
    name: str,
    channel: str,
    config: dict[str, Any],
    is_default: bool,
    group: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    if is_default:
        await conn.execute(
            update(channel_accounts)
            .where(channel_accounts.c.channel == channel, channel_accounts.c.name != name)
            .values(is_default=False)
        )
    sealed = box.seal(json.dumps(config, separators=(",", ":")))
    stmt = upsert(conn, channel_accounts).values(
        name=name,
        channel=channel,
        config_encrypted=sealed,
        is_default=is_default,
        routing_group=group,
        created_at=now,
        updated_at=now,
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[channel_accounts.c.name],
            set_={
                "channel": channel,
                "config_encrypted": sealed,
                "is_default": is_default,
                "routing_group": group,
                "updated_at": now,
            },
        )
    )
    account = await get_account(conn, box, name)
    assert account is not None
    return account


async def get_account(conn: AsyncConnection, box: SecretBox, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(channel_accounts).where(channel_accounts.c.name == name))).mappings().first()
    return _decode(row, box) if row else None


async def list_accounts(conn: AsyncConnection, box: SecretBox, channel: str | None = None) -> list[dict[str, Any]]:
    query = select(channel_accounts).order_by(channel_accounts.c.name)
    if channel:
        query = query.where(channel_accounts.c.channel == channel)
    return [_decode(r, box) for r in (await conn.execute(query)).mappings()]


async def delete_account(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(delete(channel_accounts).where(channel_accounts.c.name == name))
    return result.rowcount > 0


async def accounts_for(conn: AsyncConnection, box: SecretBox, channels: Sequence[str]) -> list[Account]:
    """The accounts of these channels, typed, for the worker's routing."""
    if not channels:
        return []
    rows = await conn.execute(
        select(channel_accounts).where(channel_accounts.c.channel.in_(list(channels))).order_by(channel_accounts.c.name)
    )
    out = []
    for row in rows.mappings():
        d = _decode(row, box)
        out.append(Account(d["name"], d["channel"], d["config"], d["default"], d["group"], d["error"]))
    return out
