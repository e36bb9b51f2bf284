"""First start: the first admin key; ``--demo``: a type, templates, two users and a notification."""

from __future__ import annotations

from typing import Any

from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.engine.trigger import TriggerRequest, trigger
from herald.store import catalog, users
from herald.store.apikeys import count_api_keys, create_api_key

DEMO_TYPE = "recharge.succeeded"


async def ensure_first_admin_key(herald: Herald) -> str | None:
    """On an empty database, create one admin key and return it (once)."""
    async with herald.db.write() as conn:
        if await count_api_keys(conn):
            return None
        _, plaintext = await create_api_key(conn, "first admin key", ["admin", "read", "send"])
    return plaintext


async def seed_demo(herald: Herald) -> dict[str, Any]:
    async with herald.db.write() as conn:
        await catalog.put_type(
            conn,
            DEMO_TYPE,
            {
                "name": "充值成功 / Recharge succeeded",
                "category": "reminder",
                "priority": "normal",
                "channels": ["inapp"],
                "critical": False,
                "ttl_seconds": None,
                "description": "Demo type seeded by `herald serve --demo`.",
            },
        )
        await catalog.put_template(
            conn,
            DEMO_TYPE,
            "inapp",
            "zh-CN",
            {
                "title": "充值成功",
                "summary": "您已成功充值 ${amount} 元",
                "body": "您的账户已到账 ${amount} 元，感谢使用。",
            },
        )
        await catalog.put_template(
            conn,
            DEMO_TYPE,
            "inapp",
            "en",
            {"title": "Recharge succeeded", "summary": "You topped up ${amount}", "body": "${amount} was credited."},
        )
        await users.upsert_user(conn, "alice", {"name": "Alice", "locale": "zh-CN", "tags": ["vip"]})
        await users.upsert_user(conn, "bob", {"name": "Bob", "locale": "en"})
    await trigger(herald, TriggerRequest(type=DEMO_TYPE, to=["alice", "bob"], data={"amount": "100.00"}))
    token, _ = mint_user_token(herald.secret_key, "alice", 7 * 24 * 3600)
    return {"token": token}
