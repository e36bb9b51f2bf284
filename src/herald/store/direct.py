"""Direct messages, each user's side of their conversations, blocks, and the audit of admins' reads.

The conversation rows are the locks of a conversation: a message first upserts both sides (in a
fixed order, so two users writing to each other at once cannot deadlock), and everything else the
message changes (its time, the last message, the receiver's unread count and inbox item) is written
while those rows are held. Two messages at once therefore update one inbox item, one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.direct import pair
from herald.store.dialect import upsert
from herald.store.tables import (
    conversation_reads,
    direct_blocks,
    direct_conversations,
    direct_messages,
    inbox_items,
    users,
)

Key = tuple[datetime, str]
"""A page's sort key: (time, id), newest first; a cursor names the last key of a page."""

_conv = direct_conversations
_msg = direct_messages
ERASE_CHUNK = 1000
_MESSAGE_COLUMNS = (_msg.c.id, _msg.c.sender_id, _msg.c.user_a, _msg.c.user_b, _msg.c.body, _msg.c.created_at)


@dataclass(frozen=True)
class ReceiverSide:
    """The receiver's conversation row as the message left it: the unread count with this message,
    and the inbox item the conversation keeps (the new id given when it had none)."""

    unread: int
    inbox_item_id: str


# -- users and blocks ------------------------------------------------------------------------------


async def user_names(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, str | None]:
    """``{id: name}`` of those of ``user_ids`` that exist."""
    rows = await conn.execute(select(users.c.id, users.c.name).where(users.c.id.in_(list(user_ids))))
    return {user_id: name for user_id, name in rows}


async def blocks_between(conn: AsyncConnection, sender: str, receiver: str) -> set[str]:
    """Who of the two has blocked the other: a set of ``sender`` and/or ``receiver``."""
    rows = await conn.execute(
        select(direct_blocks.c.user_id).where(
            or_(
                and_(direct_blocks.c.user_id == receiver, direct_blocks.c.blocked_id == sender),
                and_(direct_blocks.c.user_id == sender, direct_blocks.c.blocked_id == receiver),
            )
        )
    )
    return {user_id for (user_id,) in rows}


async def put_block(conn: AsyncConnection, user_id: str, blocked_id: str, now: datetime) -> dict[str, Any]:
    """Block (again: the first time stays); the block as stored."""
    stmt = upsert(conn, direct_blocks).values(user_id=user_id, blocked_id=blocked_id, created_at=now)
    await conn.execute(
        stmt.on_conflict_do_nothing(index_elements=[direct_blocks.c.user_id, direct_blocks.c.blocked_id])
    )
    row = (
        await conn.execute(
            select(direct_blocks.c.blocked_id, direct_blocks.c.created_at).where(
                direct_blocks.c.user_id == user_id, direct_blocks.c.blocked_id == blocked_id
            )
        )
    ).one()
    return {"user_id": row.blocked_id, "created_at": row.created_at}


async def delete_block(conn: AsyncConnection, user_id: str, blocked_id: str) -> bool:
    result = await conn.execute(
        delete(direct_blocks).where(direct_blocks.c.user_id == user_id, direct_blocks.c.blocked_id == blocked_id)
    )
    return result.rowcount > 0


async def blocks_page(conn: AsyncConnection, user_id: str, *, before: Key | None, limit: int) -> list[dict[str, Any]]:
    """The users ``user_id`` blocked, latest block first."""
    query = select(direct_blocks.c.blocked_id.label("user_id"), direct_blocks.c.created_at).where(
        direct_blocks.c.user_id == user_id
    )
    if before is not None:
        query = query.where(tuple_(direct_blocks.c.created_at, direct_blocks.c.blocked_id) < tuple_(*before))
    query = query.order_by(direct_blocks.c.created_at.desc(), direct_blocks.c.blocked_id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


# -- a message ------------------------------------------------------------------------------------


async def _upsert_side(conn: AsyncConnection, user_id: str, peer_id: str, now: datetime, item_id: str | None) -> Any:
    """Create or lock ``user_id``'s side; ``item_id`` given: this side receives (unread + 1, and the
    item id kept, or ``item_id`` when it has none)."""
    stmt = upsert(conn, _conv).values(
        user_id=user_id, peer_id=peer_id, unread=0 if item_id is None else 1, inbox_item_id=item_id, created_at=now
    )
    if item_id is None:
        changes: dict[str, Any] = {"unread": _conv.c.unread}  # no change; the row is locked all the same
    else:
        changes = {
            "unread": _conv.c.unread + 1,
            "inbox_item_id": func.coalesce(_conv.c.inbox_item_id, stmt.excluded.inbox_item_id),
        }
    stmt = stmt.on_conflict_do_update(index_elements=[_conv.c.user_id, _conv.c.peer_id], set_=changes)
    return (await conn.execute(stmt.returning(_conv.c.unread, _conv.c.inbox_item_id))).one()


async def lock_conversation(
    conn: AsyncConnection, sender: str, receiver: str, now: datetime, new_item_id: str
) -> ReceiverSide:
    """Both sides of the conversation, created or locked in the pair's order; the receiver's as
    ``ReceiverSide`` (``new_item_id`` becomes its item id when it had none)."""
    receiver_row = None
    for user_id in pair(sender, receiver):
        if user_id == receiver:
            receiver_row = await _upsert_side(conn, receiver, sender, now, new_item_id)
        else:
            await _upsert_side(conn, sender, receiver, now, None)
    assert receiver_row is not None
    return ReceiverSide(int(receiver_row.unread), str(receiver_row.inbox_item_id))


async def add_message(
    conn: AsyncConnection, message_id: str, sender: str, receiver: str, body: str, now: datetime
) -> dict[str, Any]:
    """The message, and the last message of both sides (``lock_conversation`` first)."""
    user_a, user_b = pair(sender, receiver)
    row = {"id": message_id, "user_a": user_a, "user_b": user_b, "sender_id": sender, "body": body, "created_at": now}
    await conn.execute(insert(_msg).values(**row))
    await conn.execute(
        update(_conv)
        .where(tuple_(_conv.c.user_id, _conv.c.peer_id).in_([(sender, receiver), (receiver, sender)]))
        .values(last_message_id=message_id, last_message_at=now)
    )
    return row


async def set_inbox_item(conn: AsyncConnection, user_id: str, peer_id: str, item_id: str) -> None:
    await conn.execute(
        update(_conv).where(_conv.c.user_id == user_id, _conv.c.peer_id == peer_id).values(inbox_item_id=item_id)
    )


async def update_item(conn: AsyncConnection, user_id: str, item_id: str, values: dict[str, Any]) -> bool:
    """Set ``values`` on the user's inbox item; False when it is gone (the user deleted it)."""
    result = await conn.execute(
        update(inbox_items).where(inbox_items.c.id == item_id, inbox_items.c.user_id == user_id).values(**values)
    )
    return result.rowcount > 0


# -- reading ---------------------------------------------------------------------------------------


def _conversation_query(user_id: str) -> Any:
    peer = users.alias("peer")
    return (
        select(
            _conv.c.peer_id,
            peer.c.name.label("peer_name"),
            _conv.c.unread,
            _conv.c.read_at,
            _conv.c.last_message_at,
            *_MESSAGE_COLUMNS,
        )
        .select_from(
            _conv.join(_msg, _msg.c.id == _conv.c.last_message_id).outerjoin(peer, peer.c.id == _conv.c.peer_id)
        )
        .where(_conv.c.user_id == user_id)
    )


async def conversations_page(
    conn: AsyncConnection, user_id: str, *, before: Key | None, limit: int
) -> list[dict[str, Any]]:
    """The user's conversations, latest message first (the key: last message time, peer)."""
    query = _conversation_query(user_id)
    if before is not None:
        query = query.where(tuple_(_conv.c.last_message_at, _conv.c.peer_id) < tuple_(*before))
    query = query.order_by(_conv.c.last_message_at.desc(), _conv.c.peer_id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def conversation(conn: AsyncConnection, user_id: str, peer_id: str) -> dict[str, Any] | None:
    """The user's side of their conversation with ``peer_id``, or None when they have none."""
    row = (await conn.execute(_conversation_query(user_id).where(_conv.c.peer_id == peer_id))).mappings().first()
    return dict(row) if row else None


async def messages_page(
    conn: AsyncConnection, user_id: str, peer_id: str, *, before: Key | None, limit: int
) -> list[dict[str, Any]]:
    """The messages between the two, newest first, strictly before ``before``."""
    user_a, user_b = pair(user_id, peer_id)
    query = select(*_MESSAGE_COLUMNS).where(_msg.c.user_a == user_a, _msg.c.user_b == user_b)
    if before is not None:
        query = query.where(tuple_(_msg.c.created_at, _msg.c.id) < tuple_(*before))
    query = query.order_by(_msg.c.created_at.desc(), _msg.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def mark_read(conn: AsyncConnection, user_id: str, peer_id: str, now: datetime) -> tuple[bool, str | None]:
    """The user has read everything the peer sent: (whether they have that conversation, its item)."""
    result = await conn.execute(
        update(_conv)
        .where(_conv.c.user_id == user_id, _conv.c.peer_id == peer_id)
        .values(unread=0, read_at=now)
        .returning(_conv.c.inbox_item_id)
    )
    row = result.first()
    return (False, None) if row is None else (True, row.inbox_item_id)


# -- the audit of admins' reads --------------------------------------------------------------------


async def record_read(
    conn: AsyncConnection, read_id: str, *, key_id: str, key_name: str, user_id: str, peer_id: str, now: datetime
) -> None:
    await conn.execute(
        insert(conversation_reads).values(
            id=read_id, key_id=key_id, key_name=key_name, user_id=user_id, peer_id=peer_id, created_at=now
        )
    )


async def reads_page(conn: AsyncConnection, *, before: Key | None, limit: int) -> list[dict[str, Any]]:
    query = select(conversation_reads)
    if before is not None:
        query = query.where(tuple_(conversation_reads.c.created_at, conversation_reads.c.id) < tuple_(*before))
    query = query.order_by(conversation_reads.c.created_at.desc(), conversation_reads.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


# -- erasure ---------------------------------------------------------------------------------------


async def erase_user(conn: AsyncConnection, user_id: str) -> None:
    """Every message the user wrote or received, both sides of their conversations, the ``direct``
    items their messages left in other users' inboxes, and the blocks they made or were subject of.
    (Their own inbox items go with the rest of their inbox; the audit of admins' reads stays.)"""
    # the conversation rows first, as a message takes them (then the items): no lock order to deadlock on
    gone = await conn.execute(
        delete(_conv)
        .where(or_(_conv.c.user_id == user_id, _conv.c.peer_id == user_id))
        .returning(_conv.c.user_id, _conv.c.inbox_item_id)
    )
    items = [(owner, item_id) for owner, item_id in gone if owner != user_id and item_id is not None]
    for start in range(0, len(items), ERASE_CHUNK):  # bounded statements, whatever the number of peers
        chunk = items[start : start + ERASE_CHUNK]
        await conn.execute(delete(inbox_items).where(tuple_(inbox_items.c.user_id, inbox_items.c.id).in_(chunk)))
    await conn.execute(delete(_msg).where(or_(_msg.c.user_a == user_id, _msg.c.user_b == user_id)))
    await conn.execute(
        delete(direct_blocks).where(or_(direct_blocks.c.user_id == user_id, direct_blocks.c.blocked_id == user_id))
    )
