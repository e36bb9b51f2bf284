"""Direct messages (个人私信): the user's endpoints (user token) and the admins' audited reads.

``HERALD_DIRECT_MESSAGES=false`` turns the user's endpoints off: they answer 404, as endpoints that
do not exist in this deployment. The admins' endpoints stay, for what was written before.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.auth import AdminKey, ConversationsKey, CurrentUser, HeraldDep
from herald.api.idempotency import Store, idempotent
from herald.api.openapi import (
    BlockOut,
    BlockPage,
    ConversationOut,
    ConversationPage,
    ConversationReadPage,
    MessageOut,
    MessagePage,
    documented,
)
from herald.api.params import Cursor, Limit, UserId
from herald.api.schemas import Strict
from herald.engine import direct

PeerId = Annotated[str, Path(min_length=1, max_length=200)]


async def direct_messages_on(herald: HeraldDep) -> None:
    if not herald.settings.direct_messages:
        raise HTTPException(404, "direct messages are turned off in this deployment (HERALD_DIRECT_MESSAGES)")


router = APIRouter(prefix="/v1/me", tags=["direct messages"], dependencies=[Depends(direct_messages_on)])
admin_router = APIRouter(prefix="/v1", tags=["direct messages"])


class MessageIn(Strict):
    to: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    body: str


# -- views -----------------------------------------------------------------------------------------


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def message_view(m: dict[str, Any], viewer: str) -> dict[str, Any]:
    """A message as ``viewer`` (one of its two users) sees it: ``conversation`` is the other one."""
    sender = m["sender_id"]
    receiver = m["user_b"] if sender == m["user_a"] else m["user_a"]
    return {
        "id": m["id"],
        "conversation": receiver if viewer == sender else sender,
        "from": sender,
        "to": receiver,
        "body": m["body"],
        "created_at": _t(m["created_at"]),
    }


def conversation_view(c: dict[str, Any], viewer: str) -> dict[str, Any]:
    return {
        "peer": c["peer_id"],
        "peer_name": c["peer_name"],
        "unread": c["unread"],
        "read_at": _t(c["read_at"]),
        "updated_at": _t(c["last_message_at"]),
        "last_message": message_view(c, viewer),
    }


def block_view(b: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": b["user_id"], "created_at": _t(b["created_at"])}


def read_view(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "key_id": r["key_id"],
        "key_name": r["key_name"],
        "user_id": r["user_id"],
        "peer": r["peer_id"],
        "at": _t(r["created_at"]),
    }


def _messages(page: direct.Page, viewer: str) -> dict[str, Any]:
    return {"items": [message_view(m, viewer) for m in page.items], "next_cursor": page.next_cursor}


def idempotency_scope(user_id: str) -> str:
    """The user's own namespace of Idempotency-Keys, within the table's 40 characters."""
    return "dm_" + hashlib.sha256(user_id.encode()).hexdigest()[:37]


# -- the user's --------------------------------------------------------------------------------------


@router.post("/messages", status_code=201, **documented(MessageOut, 201, errors=(403, 404), idempotent=True))
async def send_message(body: MessageIn, user_id: CurrentUser, herald: HeraldDep, request: Request) -> Response:
    """Write to another user. 404: no such user; 403: a block stands between you."""

    async def handler(save: Store | None) -> tuple[int, Any]:
        async def keep(conn: AsyncConnection, message: dict[str, Any]) -> None:
            if save is not None:
                await save(conn, 201, message_view(message, user_id))

        try:
            message = await direct.send(herald, user_id, body.to, body.body, keep)
        except direct.MessageRefused as exc:
            raise HTTPException(403, exc.detail) from exc
        return 201, message_view(message, user_id)

    return await idempotent(request, herald, idempotency_scope(user_id), handler)


@router.get("/conversations", **documented(ConversationPage))
async def list_conversations(
    user_id: CurrentUser, herald: HeraldDep, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """The caller's conversations, the one with the latest message first."""
    page = await direct.conversations(herald, user_id, cursor=cursor, limit=limit)
    return {"items": [conversation_view(c, user_id) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/conversations/{peer}", **documented(ConversationOut))
async def get_conversation(peer: PeerId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return conversation_view(await direct.conversation(herald, user_id, peer), user_id)


@router.get("/conversations/{peer}/messages", **documented(MessagePage))
async def list_messages(
    peer: PeerId, user_id: CurrentUser, herald: HeraldDep, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """Newest first; a cursor stays valid while new messages arrive (they come before it)."""
    return _messages(await direct.messages(herald, user_id, peer, cursor=cursor, limit=limit), user_id)


@router.post("/conversations/{peer}/read", **documented(ConversationOut))
async def read_conversation(peer: PeerId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    """Everything the peer wrote is read: `unread` 0, and the conversation's inbox item read."""
    return conversation_view(await direct.read(herald, user_id, peer), user_id)


@router.get("/blocks", **documented(BlockPage))
async def list_blocks(me: CurrentUser, herald: HeraldDep, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    """The users the caller blocked (never who blocked the caller)."""
    page = await direct.blocks(herald, me, cursor=cursor, limit=limit)
    return {"items": [block_view(b) for b in page.items], "next_cursor": page.next_cursor}


@router.put("/blocks/{user_id}", **documented(BlockOut))
async def put_block(user_id: PeerId, me: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    """Refuse the user's messages from now on (again: no change)."""
    return block_view(await direct.block(herald, me, user_id))


@router.delete("/blocks/{user_id}", status_code=204, **documented(None, 204))
async def delete_block(user_id: PeerId, me: CurrentUser, herald: HeraldDep) -> Response:
    await direct.unblock(herald, me, user_id)
    return Response(status_code=204)


# -- admins' ---------------------------------------------------------------------------------------


@admin_router.get("/users/{user_id}/conversations/{peer}/messages", **documented(MessagePage))
async def read_user_conversation(
    user_id: UserId, peer: PeerId, herald: HeraldDep, key: ConversationsKey, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """A user's conversation, as that user sees it. Every call is recorded in the audit
    (`GET /v1/audit/conversation-reads`) and logged, without the messages."""
    page = await direct.audited_messages(
        herald, key_id=key.id, key_name=key.name, user_id=user_id, peer_id=peer, cursor=cursor, limit=limit
    )
    return _messages(page, user_id)


@admin_router.get("/audit/conversation-reads", **documented(ConversationReadPage))
async def list_conversation_reads(
    herald: HeraldDep, _: AdminKey, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """Every admin read of a conversation, newest first: which key, which conversation, when."""
    page = await direct.audit(herald, cursor=cursor, limit=limit)
    return {"items": [read_view(r) for r in page.items], "next_cursor": page.next_cursor}
