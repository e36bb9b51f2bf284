"""API keys: ``hk_…``, stored as a SHA-256 hash (the key itself has 256 bits of entropy)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.ids import new_id
from herald.store.tables import api_keys
from herald.store.types import utcnow


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(conn: AsyncConnection, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key; returns it with the plaintext, which is never stored."""
    plaintext = "hk_" + secrets.token_urlsafe(32)
    key_id = new_id("key")
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            name=name,
            key_hash=hash_key(plaintext),
            prefix=plaintext[:10],
            scopes=sorted(set(scopes)),
            created_at=utcnow(),
        )
    )
    return ApiKey(key_id, name, frozenset(scopes)), plaintext


async def find_api_key(conn: AsyncConnection, plaintext: str) -> ApiKey | None:
    row = (
        await conn.execute(
            select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes).where(
                api_keys.c.key_hash == hash_key(plaintext), api_keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    return ApiKey(row.id, row.name, frozenset(row.scopes)) if row else None


async def count_api_keys(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(api_keys))).scalar_one())


async def revoke_api_key(conn: AsyncConnection, key_id: str) -> bool:
    result = await conn.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return result.rowcount > 0


async def list_api_keys(conn: AsyncConnection) -> list[dict[str, object]]:
    """Every key, newest first, without its hash."""
    query = select(
        api_keys.c.id,
        api_keys.c.name,
        api_keys.c.prefix,
        api_keys.c.scopes,
        api_keys.c.created_at,
        api_keys.c.last_used_at,
        api_keys.c.revoked_at,
    ).order_by(api_keys.c.created_at.desc())
    return [dict(r) for r in (await conn.execute(query)).mappings()]
