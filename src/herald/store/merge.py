"""Merging inbox items: insert-or-merge in one atomic statement, on SQLite and PostgreSQL.

``ix_inbox_items_merge_target`` holds at most one item per (user, type, merge key) whose
``merge_key`` is set: the open merge target. ``upsert_items`` inserts each new item with its key, or,
when the key is taken by a target that is still open (unread, not archived, not expired, within its
window), updates that target instead: ``count`` + 1, the newest event's content, moved to the top
(``created_at``), unseen again. The unique index makes this atomic whatever the concurrency: on
PostgreSQL a second transaction waits for the first's row and then merges into it; SQLite has one
writer. A target that is no longer open (its window passed, it expired) is released (its key
cleared) and the item inserted anew; reading or archiving an item releases it at once (store/inbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, not_, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.store.tables import deliveries, inbox_items
from herald.store.types import UTCDateTime

_BATCH = 500
"""Rows per statement: 22 parameters each, well under both databases' limit (32,767) per statement."""
_ROUNDS = 4
"""Insert, release what was stale, insert again: a second round only ever follows a release, and
each release is of an item no longer open, so more than a couple of rounds means a bug."""


@dataclass(frozen=True)
class Placed:
    """Where one new item went."""

    user_id: str
    item_id: str
    """The new item's id, or the id of the item it merged into."""
    notification_id: str
    """The notification the item belonged to before this event (a merge), or this event's."""
    count: int
    actors: list[dict[str, Any]] | None
    """The target's actors before this event (a merge), or the new item's."""

    def merged(self, proposed_id: str) -> bool:
        return self.item_id != proposed_id


def _open_target(now: Any) -> Any:
    """The existing item is still a merge target at ``now``."""
    t = inbox_items.c
    return and_(
        t.merge_until > now,
        t.read_at.is_(None),
        t.archived_at.is_(None),
        or_(t.expires_at.is_(None), t.expires_at > now),
    )


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    """The statement, built once per dialect and executed with the rows as parameters, so that it is
    compiled once (rows spliced in with ``.values([...])`` made every trigger compile it anew: 3-4 ms)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        stmt = _UPSERTS[dialect] = _build_upsert(dialect)
    return stmt


def _build_upsert(dialect: str) -> Any:
    # each dialect's own INSERT … ON CONFLICT, imported for the database in use only (tables.py's
    # use_dialect says why: naming a dialect loads it)
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        stmt = postgresql.insert(inbox_items)
    else:
        from sqlalchemy.dialects import sqlite

        stmt = sqlite.insert(inbox_items)
    t = inbox_items.c
    new = stmt.excluded
    latest = func.greatest if dialect == "postgresql" else func.max  # never back in time (clock skew)
    return stmt.on_conflict_do_update(
        index_elements=[t.user_id, t.type_key, t.merge_key],
        index_where=t.merge_key.is_not(None),
        set_={  # notification_id too, but after the owner it had is read (update_merged)
            "count": t.count + 1,
            "category": new.category,
            "title": new.title,
            "summary": new.summary,
            "body": new.body,
            "data": new.data,
            "actor": new.actor,
            "target": new.target,
            "action_url": new.action_url,
            "actions": new.actions,
            "seen_at": None,
            "created_at": latest(t.created_at, new.created_at),
            "expires_at": new.expires_at,
        },
        where=_open_target(new.created_at),
    ).returning(t.id, t.user_id, t.notification_id, t.count, t.actors)


async def upsert_items(conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, now: datetime) -> dict[str, Placed]:
    """Insert ``rows`` (full inbox item rows with ``merge_key`` and ``merge_until``, one per user, of
    one type) or merge each into its user's open target: ``{user_id: Placed}``. Rows go in user
    order, so two transactions merging for the same users lock their items in the same order."""
    pending = sorted(rows, key=lambda r: r["user_id"])
    placed: dict[str, Placed] = {}
    dialect = conn.dialect.name
    for _ in range(_ROUNDS):
        for start in range(0, len(pending), _BATCH):
            batch = pending[start : start + _BATCH]
            # several rows: SQLAlchemy's "insertmanyvalues" sends them as one multi-row statement
            result = await conn.execute(_upsert(dialect), list(batch))
            for item_id, user_id, owner, count, actors in result:
                placed[user_id] = Placed(user_id, item_id, owner, int(count), actors)
        pending = [r for r in pending if r["user_id"] not in placed]
        if not pending:
            return placed
        await release_stale_targets(conn, pending, now=now)
    raise RuntimeError(f"{len(pending)} inbox items found neither a place nor a stale target to release")


async def release_stale_targets(conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, now: datetime) -> int:
    """Clear the merge key of the targets ``rows`` conflicted with that are no longer open at ``now``
    (never an open one: another transaction may have just opened it, and it must take the merge)."""
    t = inbox_items.c
    result = await conn.execute(
        update(inbox_items)
        .where(
            t.user_id == bindparam("b_user_id"),
            t.type_key == bindparam("b_type_key"),
            t.merge_key == bindparam("b_merge_key"),
            not_(_open_target(bindparam("b_now", type_=UTCDateTime))),
        )
        .values(merge_key=None, merge_until=None),
        [
            {"b_user_id": r["user_id"], "b_type_key": r["type_key"], "b_merge_key": r["merge_key"], "b_now": now}
            for r in rows
        ],
    )
    return int(result.rowcount)


async def update_merged(conn: AsyncConnection, updates: Sequence[dict[str, Any]]) -> None:
    """Finish the merges: each of ``updates`` has the item's ``id``, its new ``notification_id`` (the
    newest event's), ``actors`` and the content columns (title, summary, body, action_url, actions)."""
    if not updates:
        return
    t = inbox_items.c
    await conn.execute(
        update(inbox_items)
        .where(t.id == bindparam("b_id"))
        .values(
            notification_id=bindparam("b_notification_id"),
            actors=bindparam("b_actors", type_=t.actors.type),
            title=bindparam("b_title"),
            summary=bindparam("b_summary"),
            body=bindparam("b_body"),
            action_url=bindparam("b_action_url"),
            actions=bindparam("b_actions", type_=t.actions.type),
        ),
        [{f"b_{k}": v for k, v in u.items()} for u in updates],
    )


async def record_superseded(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """The in-app lines of notifications whose item a later event took over (``deliveries`` rows,
    already settled: no worker wakes for them)."""
    if rows:
        await conn.execute(insert(deliveries), list(rows))
