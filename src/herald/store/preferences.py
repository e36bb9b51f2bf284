"""Users' preferences documents, and their in-app index (``inapp_choices``).

The document is stored whole, as the API shows it. Beside it, for the trigger's hot path, the
in-app index holds a few rows per user who turned the inbox off somewhere (core/preferences.py
``inapp_choices``): a trigger asks it in one indexed statement for all its recipients, and the
process asks it whether anyone at all did, per type, to skip even that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, false, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.preferences import Preferences, stored_preferences
from herald.store.dialect import upsert
from herald.store.raw import any_of, text_list
from herald.store.tables import inapp_choices, user_preferences

CHUNK = 5000
"""Users per statement when reading many documents (an IN list is bounded by the parameter limit)."""


async def get_document(
    conn: AsyncConnection, user_id: str, *, for_update: bool = False
) -> tuple[dict[str, Any], datetime] | None:
    """The user's stored document and when it was saved, or None when they saved none.
    ``for_update``: locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    query = select(user_preferences.c.document, user_preferences.c.updated_at).where(
        user_preferences.c.user_id == user_id
    )
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return (dict(row.document or {}), row.updated_at) if row else None


async def preferences_of(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, Preferences]:
    """Typed, for the worker: the preferences of those of ``user_ids`` who saved any."""
    out: dict[str, Preferences] = {}
    for start in range(0, len(user_ids), CHUNK):
        chunk = list(user_ids[start : start + CHUNK])
        rows = await conn.execute(
            select(user_preferences.c.user_id, user_preferences.c.document).where(user_preferences.c.user_id.in_(chunk))
        )
        out.update({uid: stored_preferences(document) for uid, document in rows})
    return out


async def put_document(
    conn: AsyncConnection, user_id: str, prefs: Preferences, choices: Mapping[str, bool], now: datetime
) -> bool:
    """Store ``prefs`` as the user's document and ``choices`` as their in-app index rows; True when
    the inbox is now off somewhere it was not (every process must then hear of it at once)."""
    document = prefs.as_json()
    stmt = upsert(conn, user_preferences).values(user_id=user_id, document=document, updated_at=now)
    # the upsert first: it takes the row's lock, so concurrent saves of one user replace the index in turn
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[user_preferences.c.user_id], set_={"document": document, "updated_at": now}
        )
    )
    off_before = {
        scope
        for (scope,) in await conn.execute(
            select(inapp_choices.c.scope).where(
                and_(inapp_choices.c.user_id == user_id, inapp_choices.c.enabled == false())
            )
        )
    }
    await conn.execute(delete(inapp_choices).where(inapp_choices.c.user_id == user_id))
    if choices:
        await conn.execute(
            insert(inapp_choices),
            [{"user_id": user_id, "scope": scope, "enabled": on} for scope, on in choices.items()],
        )
    return bool({scope for scope, on in choices.items() if not on} - off_before)


async def erase_preferences(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(inapp_choices).where(inapp_choices.c.user_id == user_id))
    await conn.execute(delete(user_preferences).where(user_preferences.c.user_id == user_id))


async def anyone_inapp_off(conn: AsyncConnection, scopes: Sequence[str]) -> bool:
    """Whether any user's in-app index turns the inbox off in one of ``scopes`` (an index probe)."""
    found = await conn.execute(
        select(inapp_choices.c.user_id)
        .where(and_(inapp_choices.c.scope.in_(list(scopes)), inapp_choices.c.enabled == false()))
        .limit(1)
    )
    return found.first() is not None


async def inapp_choices_of(
    conn: AsyncConnection, user_ids: Sequence[str], scopes: Sequence[str]
) -> dict[str, dict[str, bool]]:
    """``{user_id: {scope: enabled}}``: the in-app index rows of ``user_ids`` in ``scopes``, in one
    statement (the lists are bound as one parameter each, whatever their length)."""
    if not user_ids or not scopes:
        return {}
    postgres = conn.dialect.name == "postgresql"
    rows = await conn.execute(
        text(
            "SELECT user_id, scope, enabled FROM inapp_choices"  # noqa: S608 (placeholders, not values)
            f" WHERE user_id {any_of(postgres, ':ids')} AND scope {any_of(postgres, ':scopes')}"
        ),
        {"ids": text_list(postgres, list(dict.fromkeys(user_ids))), "scopes": text_list(postgres, list(scopes))},
    )
    out: dict[str, dict[str, bool]] = {}
    for user_id, scope, enabled in rows:
        out.setdefault(user_id, {})[scope] = bool(enabled)
    return out
