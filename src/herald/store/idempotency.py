"""Idempotency-Key records: replay within 24 h, 409 on another body or while in flight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.tables import idempotency_keys

TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Claim:
    """What a request with this key should do: ``proceed``, ``replay``, ``mismatch`` or ``in_flight``."""

    outcome: str
    status: int | None = None
    body: bytes | None = None


async def claim_key(
    conn: AsyncConnection, scope: str, key: str, request_hash: str, *, now: datetime, stale_after: timedelta
) -> Claim:
    """Take the key for this request, or say why not. Commit before doing the work."""
    stmt = upsert(conn, idempotency_keys).values(
        scope=scope, key=key, request_hash=request_hash, state="in_flight", created_at=now, expires_at=now + TTL
    )
    inserted = await conn.execute(
        stmt.on_conflict_do_nothing(index_elements=[idempotency_keys.c.scope, idempotency_keys.c.key])
    )
    if inserted.rowcount:
        return Claim("proceed")
    row = (
        (
            await conn.execute(
                select(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
            )
        )
        .mappings()
        .first()
    )
    if row is None:  # removed between the two statements: treat as new on the next try
        return Claim("in_flight")
    abandoned = row["state"] == "in_flight" and row["created_at"] < now - stale_after
    if row["expires_at"] <= now or abandoned:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
            .values(
                request_hash=request_hash,
                state="in_flight",
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + TTL,
            )
        )
        return Claim("proceed")
    if row["request_hash"] != request_hash:
        return Claim("mismatch")
    if row["state"] == "in_flight":
        return Claim("in_flight")
    return Claim("replay", row["response_status"], row["response_body"])


async def store_response(conn: AsyncConnection, scope: str, key: str, status: int, body: bytes) -> None:
    await conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
        .values(state="done", response_status=status, response_body=body)
    )


async def release_key(conn: AsyncConnection, scope: str, key: str) -> None:
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key, idempotency_keys.c.state == "in_flight"
        )
    )


async def purge_expired(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
    return int(result.rowcount)
