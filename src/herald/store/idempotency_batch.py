"""Idempotency keys of a batch's entries: many at once, in the transaction that writes the entries.

The single-request flow (store/idempotency.py) claims a key in a transaction of its own, marks it
in flight, and stores the response with the work. A batch knows each entry's response before it
writes (ids are made up front), so its keys are inserted already done, response and all, in the
same transaction as the notifications: either both are committed or neither. A key held by a
transaction still running makes the insert wait for it (PostgreSQL) or cannot happen (SQLite's one
writer), and the rows go in key order, so two batches sharing keys never deadlock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.dialect import upsert
from herald.store.idempotency import TTL
from herald.store.tables import idempotency_keys

_COLUMNS = ("request_hash", "state", "response_status", "response_body", "created_at", "expires_at")


@dataclass(frozen=True)
class DoneKey:
    """A key to record as answered: the entry's request hash and its sealed response."""

    key: str
    request_hash: str
    status: int
    body: bytes


@dataclass(frozen=True)
class KeyRow:
    """A key as stored: what a later entry with it is answered (replay, mismatch, in flight)."""

    request_hash: str
    state: str
    status: int | None
    body: bytes | None


async def record_keys(
    conn: AsyncConnection, scope: str, keys: Sequence[DoneKey], *, now: datetime, stale_after: timedelta
) -> set[str]:
    """Insert ``keys`` (distinct) as done; a key whose row expired, or was left in flight longer
    than ``stale_after`` by a crashed request, is taken over. Returns the keys recorded: any other
    is held by a live row, which ``find_keys`` reads."""
    if not keys:
        return set()
    ordered = sorted(keys, key=lambda k: k.key)
    rows = [
        {
            "scope": scope,
            "key": k.key,
            "request_hash": k.request_hash,
            "state": "done",
            "response_status": k.status,
            "response_body": k.body,
            "created_at": now,
            "expires_at": now + TTL,
        }
        for k in ordered
    ]
    stmt = upsert(conn, idempotency_keys).values(rows)
    stale = or_(
        idempotency_keys.c.expires_at <= now,
        (idempotency_keys.c.state == "in_flight") & (idempotency_keys.c.created_at < now - stale_after),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[idempotency_keys.c.scope, idempotency_keys.c.key],
        set_={c: stmt.excluded[c] for c in _COLUMNS},
        where=stale,
    ).returning(idempotency_keys.c.key)
    return {key for (key,) in await conn.execute(stmt)}


async def find_keys(
    conn: AsyncConnection, scope: str, keys: Collection[str], *, now: datetime, stale_after: timedelta
) -> dict[str, KeyRow]:
    """The live rows of ``keys``: neither expired nor abandoned in flight (those count as absent)."""
    if not keys:
        return {}
    found: dict[str, KeyRow] = {}
    wanted = sorted(keys)
    for start in range(0, len(wanted), 5000):
        rows = await conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.key.in_(wanted[start : start + 5000])
            )
        )
        for row in rows.mappings():
            abandoned = row["state"] == "in_flight" and row["created_at"] < now - stale_after
            if row["expires_at"] > now and not abandoned:
                found[row["key"]] = KeyRow(
                    row["request_hash"], row["state"], row["response_status"], row["response_body"]
                )
    return found
