"""Direct messages (个人私信): sending, the conversations and their messages, reading, blocking, and
admins' audited reads.

A message is one write transaction: the conversation's rows are locked first (store/direct.py), then
the message is dated and written, and the receiver's one ``direct`` inbox item for the conversation
is created or brought up to date (the last message, the unread count, to the top, unread again).
The realtime stream hears of the item after the commit: ``inbox.new`` the first time, else
``inbox.updated``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core import direct as rules
from herald.core.cursor import decode_cursor, encode_cursor
from herald.core.enums import Category
from herald.core.errors import Invalid, NotFound
from herald.core.ids import new_id
from herald.engine import live
from herald.engine.service import Herald
from herald.store import direct as store
from herald.store import inbox as inbox_store
from herald.store import users as user_store
from herald.store.types import utcnow

log = logging.getLogger(__name__)

SaveResponse = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]
"""Called with the message inside its transaction (an Idempotency-Key's response is kept with it)."""


class MessageRefused(Exception):
    """A block stands between the two users: answered 403 with ``detail`` and nothing more."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


CANNOT_SEND = "cannot send to this user"
YOU_BLOCKED = "you have blocked this user; unblock them to send"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _page(rows: list[dict[str, Any]], limit: int, key: Callable[[dict[str, Any]], tuple[datetime, str]]) -> Page:
    """``rows`` were read with ``limit + 1``: one more means there is a next page."""
    page = rows[:limit]
    return Page(page, encode_cursor(*key(page[-1])) if len(rows) > limit else None)


def _before(cursor: str | None) -> tuple[datetime, str] | None:
    return decode_cursor(cursor) if cursor else None


# -- sending ---------------------------------------------------------------------------------------


async def send(herald: Herald, sender: str, to: str, body: str, save: SaveResponse | None = None) -> dict[str, Any]:
    """Write ``body`` from ``sender`` to ``to``; the message row. Invalid (422), NotFound (no such
    user) or MessageRefused (a block) before anything is written."""
    problems = rules.message_problems(sender, to, body, max_chars=herald.settings.direct_message_max_chars)
    if problems:
        raise Invalid(problems)
    async with herald.db.write() as conn:
        names = await store.user_names(conn, [sender, to])
        if to not in names:
            raise NotFound("user")
        blocks = await store.blocks_between(conn, sender, to)
        # the sender's own block first: were the peer's checked first, a sender could block the peer
        # and learn from the changed answer whether the peer has blocked them
        if sender in blocks:
            raise MessageRefused(YOU_BLOCKED)
        if to in blocks:
            raise MessageRefused(CANNOT_SEND)
        if sender not in names:  # a token minted by the business backend for a new user: they can be answered
            await user_store.ensure_users(conn, [sender])
        first_item_id = new_id("itm")
        side = await store.lock_conversation(conn, sender, to, utcnow(), first_item_id)
        # dated once the conversation is held: its messages are in the order they were written
        message = await store.add_message(conn, new_id("msg"), sender, to, body, utcnow())
        item_id, created = await _write_item(conn, message, side, first_item_id, names.get(sender))
        if save is not None:
            await save(conn, message)
    live.item_changed(herald, to, item_id, new=created)
    return message


def _item_values(message: dict[str, Any], unread: int, sender_name: str | None) -> dict[str, Any]:
    """The receiver's item as this message leaves it: the last message, the unread count, on top, unread."""
    sender = message["sender_id"]
    return {
        "title": rules.display_name(sender, sender_name),
        "summary": rules.summary(message["body"]),
        "body": message["body"],
        "data": {"conversation": sender, "unread": unread, "message_id": message["id"]},
        "count": unread,  # the messages the item stands for, as a merged item's count (reading keeps it)
        "actor": {"id": sender, "name": sender_name},
        "target": {"type": "conversation", "id": sender},
        "read_at": None,
        "seen_at": None,
        "archived_at": None,
        "created_at": message["created_at"],
    }


async def _write_item(
    conn: AsyncConnection,
    message: dict[str, Any],
    side: store.ReceiverSide,
    first_item_id: str,
    sender_name: str | None,
) -> tuple[str, bool]:
    """Create or update the receiver's item: (its id, whether it was created)."""
    sender = message["sender_id"]
    receiver = message["user_b"] if sender == message["user_a"] else message["user_a"]
    values = _item_values(message, side.unread, sender_name)
    if side.inbox_item_id != first_item_id and await store.update_item(conn, receiver, side.inbox_item_id, values):
        return side.inbox_item_id, False
    item_id = first_item_id
    if side.inbox_item_id != first_item_id:  # the user deleted the item: the conversation gets a new one
        item_id = new_id("itm")
        await store.set_inbox_item(conn, receiver, sender, item_id)
    row = {
        **values,
        "id": item_id,
        "user_id": receiver,
        "notification_id": None,
        "type_key": rules.ITEM_TYPE,
        "category": Category.DIRECT.value,
        "action_url": None,
        "actions": [],
        "expires_at": None,
    }
    await inbox_store.insert_items(conn, [row])
    return item_id, True


# -- a user's conversations ------------------------------------------------------------------------


async def conversations(herald: Herald, user_id: str, *, cursor: str | None, limit: int) -> Page:
    before = _before(cursor)
    async with herald.db.read() as conn:
        rows = await store.conversations_page(conn, user_id, before=before, limit=limit + 1)
    return _page(rows, limit, lambda r: (r["last_message_at"], r["peer_id"]))


async def conversation(herald: Herald, user_id: str, peer_id: str) -> dict[str, Any]:
    async with herald.db.read() as conn:
        row = await store.conversation(conn, user_id, peer_id)
    if row is None:
        raise NotFound("conversation")
    return row


async def messages(herald: Herald, user_id: str, peer_id: str, *, cursor: str | None, limit: int) -> Page:
    """The user's messages with ``peer_id``, newest first; NotFound when they have no conversation."""
    before = _before(cursor)
    async with herald.db.read() as conn:
        if await store.conversation(conn, user_id, peer_id) is None:
            raise NotFound("conversation")
        rows = await store.messages_page(conn, user_id, peer_id, before=before, limit=limit + 1)
    return _page(rows, limit, lambda r: (r["created_at"], r["id"]))


async def read(herald: Herald, user_id: str, peer_id: str) -> dict[str, Any]:
    """Everything ``peer_id`` wrote to the user is read: unread 0, and the conversation's inbox item
    read too. The conversation afterwards; NotFound when there is none."""
    now = utcnow()
    changed_item = None
    async with herald.db.write() as conn:
        found, item_id = await store.mark_read(conn, user_id, peer_id, now)
        if not found:
            raise NotFound("conversation")
        item = await inbox_store.get_item(conn, user_id, item_id) if item_id else None
        if item is not None and (item["read_at"] is None or (item["data"] or {}).get("unread")):
            values = {
                "read_at": item["read_at"] or now,
                "seen_at": item["seen_at"] or now,
                "data": {**(item["data"] or {}), "unread": 0},
            }
            await store.update_item(conn, user_id, item["id"], values)
            changed_item = item["id"]
        row = await store.conversation(conn, user_id, peer_id)
    if changed_item is not None:
        live.item_changed(herald, user_id, changed_item)
    assert row is not None
    return row


# -- blocks ----------------------------------------------------------------------------------------


async def block(herald: Herald, user_id: str, other: str) -> dict[str, Any]:
    if other == user_id:
        raise Invalid([("user_id", "is you: you cannot block yourself")])
    async with herald.db.write() as conn:
        if other not in await store.user_names(conn, [other]):
            raise NotFound("user")
        return await store.put_block(conn, user_id, other, utcnow())


async def unblock(herald: Herald, user_id: str, other: str) -> None:
    async with herald.db.write() as conn:
        if not await store.delete_block(conn, user_id, other):
            raise NotFound("block")


async def blocks(herald: Herald, user_id: str, *, cursor: str | None, limit: int) -> Page:
    before = _before(cursor)
    async with herald.db.read() as conn:
        rows = await store.blocks_page(conn, user_id, before=before, limit=limit + 1)
    return _page(rows, limit, lambda r: (r["created_at"], r["user_id"]))


# -- admins ----------------------------------------------------------------------------------------


async def audited_messages(
    herald: Herald, *, key_id: str, key_name: str, user_id: str, peer_id: str, cursor: str | None, limit: int
) -> Page:
    """An admin's read of a user's conversation: recorded (who, which conversation, when; never what
    was read) in the same transaction that reads it, so no read goes unrecorded."""
    before = _before(cursor)
    async with herald.db.write() as conn:
        if await store.conversation(conn, user_id, peer_id) is None:
            raise NotFound("conversation")
        await store.record_read(
            conn, new_id("cvr"), key_id=key_id, key_name=key_name, user_id=user_id, peer_id=peer_id, now=utcnow()
        )
        rows = await store.messages_page(conn, user_id, peer_id, before=before, limit=limit + 1)
    log.info(
        "conversation read by API key %s (%s): user %r with %r, %d message(s)",
        key_id,
        key_name,
        user_id,
        peer_id,
        min(len(rows), limit),
    )
    return _page(rows, limit, lambda r: (r["created_at"], r["id"]))


async def audit(herald: Herald, *, cursor: str | None, limit: int) -> Page:
    before = _before(cursor)
    async with herald.db.read() as conn:
        rows = await store.reads_page(conn, before=before, limit=limit + 1)
    return _page(rows, limit, lambda r: (r["created_at"], r["id"]))
