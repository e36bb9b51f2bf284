"""``${recipient.…}`` templates end to end: one trigger to many users, each message rendered for its
recipient, in the inbox (inline and fan-out job) and on a channel (the worker's build)."""

from __future__ import annotations

from typing import Any

from herald.store import notifications as notification_store
from tests.conftest import Harness
from tests.engine.test_delivery import setup_webhook
from tests.support import Receiver

USERS = {
    "u1": {"name": "张三", "email": "z@example.com", "data": {"level": "金卡"}},
    "u2": {"name": "李四", "phone": "+8613800138000"},
    "u3": {},
}


async def add_users(h: Harness) -> None:
    for uid, profile in USERS.items():
        r = await h.client.put(f"/v1/users/{uid}", json=profile, headers=h.admin())
        assert r.status_code in (200, 201), r.text


async def test_a_channel_message_is_rendered_for_each_recipient(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup_webhook(harness, url)
    r = await harness.client.put(
        "/v1/notification-types/order.shipped/templates/webhook",
        json={"title": "尊敬的 ${recipient.name}", "body": "${recipient.data.level}|${amount}|${note}"},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    await add_users(harness)
    r = await harness.trigger({"type": "order.shipped", "to": list(USERS), "data": {"amount": "9", "note": None}})
    assert r.status_code == 202, r.text
    await harness.drain()
    got: dict[str, Any] = {}
    for request in receiver.requests:
        event = request.json()["data"]
        got[event["recipient"]["id"]] = event["content"]
    assert got == {
        "u1": {"title": "尊敬的 张三", "body": "金卡|9|"},
        "u2": {"title": "尊敬的 李四", "body": "|9|"},
        "u3": {"title": "尊敬的 ", "body": "|9|"},
    }


async def test_the_fanout_job_renders_inbox_items_per_recipient(harness: Harness) -> None:
    harness.herald.settings.inline_fanout_limit = 1
    harness.herald.settings.fanout_chunk_size = 2
    await harness.put_type("hello", ["inapp"], {"inapp": {"title": "尊敬的 ${recipient.name}", "body": "${x}"}})
    await add_users(harness)
    r = await harness.trigger({"type": "hello", "audience": {"all": True}, "data": {"x": "hi"}})
    assert r.status_code == 202, r.text
    await harness.drain()
    titles = {}
    for uid in USERS:
        items = (await harness.client.get("/v1/me/inbox", headers=harness.user(uid))).json()["items"]
        titles[uid] = [(i["title"], i["body"]) for i in items]
    assert titles == {"u1": [("尊敬的 张三", "hi")], "u2": [("尊敬的 李四", "hi")], "u3": [("尊敬的 ", "hi")]}


async def test_templates_without_recipient_are_rendered_once(harness: Harness) -> None:
    await harness.put_type("plain", ["inapp"], {"inapp": {"title": "Hi ${x}"}})
    r = await harness.trigger({"type": "plain", "to": ["u1", "u2"], "data": {"x": "all"}})
    assert r.status_code == 202, r.text
    async with harness.herald.db.read() as conn:
        stored = await notification_store.get_notification(conn, r.json()["id"])
    assert stored is not None and stored["rendered"]["inapp"]["zh-CN"] == {"title": "Hi all"}
