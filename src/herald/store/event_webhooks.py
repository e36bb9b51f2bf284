"""Event webhooks: the secret is encrypted at rest like channel account secrets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.secretbox import SecretBox
from herald.store.tables import event_webhooks
from herald.store.types import utcnow


def _decode(row: Any, box: SecretBox) -> dict[str, Any]:
    try:
        secret, error = box.open(row["secret_encrypted"]), None
    except ValueError as exc:
        secret, error = None, str(exc)
    return {
        "name": row["name"],
        "url": row["url"],
        "secret": secret,
        "error": error,
        "events": list(row["events"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def put_event_webhook(
    conn: AsyncConnection, box: SecretBox, name: str, url: str, secret: str, events: list[str]
) -> dict[str, Any]:
    now = utcnow()
    values = {"url": url, "secret_encrypted": box.seal(secret), "events": events, "updated_at": now}
    stmt = upsert(conn, event_webhooks).values(name=name, created_at=now, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[event_webhooks.c.name], set_=values))
    found = await get_event_webhook(conn, box, name)
    assert found is not None
    return found


async def get_event_webhook(conn: AsyncConnection, box: SecretBox, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(event_webhooks).where(event_webhooks.c.name == name))).mappings().first()
    return _decode(row, box) if row else None


async def list_event_webhooks(conn: AsyncConnection, box: SecretBox) -> list[dict[str, Any]]:
    rows = await conn.execute(select(event_webhooks).order_by(event_webhooks.c.name))
    return [_decode(r, box) for r in rows.mappings()]


async def delete_event_webhook(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(delete(event_webhooks).where(event_webhooks.c.name == name))
    return result.rowcount > 0
