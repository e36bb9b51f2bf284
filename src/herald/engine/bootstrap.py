"""First start: the first admin key; ``--demo``: a type, templates, two users and a notification."""

from __future__ import annotations

from dataclasses import dataclass

from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.engine.trigger import TriggerRequest, trigger
from herald.store import catalog, users
from herald.store.apikeys import count_api_keys, create_api_key

DEMO_TYPE = "recharge.succeeded"
DEMO_USER = "alice"
DEMO_TOKEN_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class DemoSeed:
    seeded: bool
    """False when the database already held types or users: nothing was written."""
    token: str | None
    """A user token for alice, when she exists."""


async def ensure_first_admin_key(herald: Herald) -> str | None:
    """On an empty database, create one admin key and return it (once)."""
    async with herald.db.write() as conn:
        if await count_api_keys(conn):
            return None
        _, plaintext = await create_api_key(conn, "first admin key", ["admin", "read", "send"])
    return plaintext


async def seed_demo(herald: Herald) -> DemoSeed:
    """Seed the demo into an empty database (no types, no users) only: a restart with ``--demo``
    must never reset what the operator has changed since, nor send the demo notification again."""
    async with herald.db.write() as conn:
        has_types = bool(await catalog.list_types(conn, after=None, limit=1))
        if has_types or (await users.users_page(conn, after=None, limit=1))[0]:
            alice = await users.get_user(conn, DEMO_USER)
            return DemoSeed(seeded=False, token=_demo_token(herald) if alice else None)
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
        await users.upsert_user(conn, DEMO_USER, {"name": "Alice", "locale": "zh-CN", "tags": ["vip"]})
        await users.upsert_user(conn, "bob", {"name": "Bob", "locale": "en"})
    herald.catalog.invalidate()  # the demo type is new: a trigger in this process must see it
    await trigger(herald, TriggerRequest(type=DEMO_TYPE, to=[DEMO_USER, "bob"], data={"amount": "100.00"}))
    return DemoSeed(seeded=True, token=_demo_token(herald))


def _demo_token(herald: Herald) -> str:
    lifetime = min(DEMO_TOKEN_SECONDS, herald.settings.user_token_max_seconds)  # a longer one would be refused
    token, _ = mint_user_token(herald.secret_key, DEMO_USER, lifetime)
    return token
