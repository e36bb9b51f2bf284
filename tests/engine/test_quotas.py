"""Consumable send grants (WeChat mini-program subscriptions): taken per send, zeroed on refusal."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr
from sqlalchemy import select, update

from herald.channels.base import Channel, ChannelSettings, OutboundMessage, SendResult
from herald.core.errors import RetryableError, TerminalError
from herald.store import quotas
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness


class _Settings(ChannelSettings):
    app_secret: SecretStr


class GrantedChannel(Channel):
    """Needs one grant of ``wechat_mp:<template_id>`` per send; answers what ``next_error`` says."""

    name = "granted"
    Settings = _Settings
    requires_template = False
    quota_exhausted_codes: ClassVar[frozenset[str]] = frozenset({"43101"})

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.next_error: Exception | None = None

    def quota_key(self, message: OutboundMessage) -> str | None:
        return "wechat_mp:TPL-1"

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        if self.next_error is not None:
            error, self.next_error = self.next_error, None
            raise error
        self.sent.append(message.recipient.id)
        return SendResult()


async def remaining(h: Harness, user: str) -> int:
    async with h.herald.db.read() as conn:
        return await quotas.remaining(conn, user, "wechat_mp:TPL-1")


async def setup(h: Harness) -> GrantedChannel:
    channel = GrantedChannel()
    h.herald.channels["granted"] = channel
    r = await h.client.put(
        "/v1/channel-accounts/mp", json={"channel": "granted", "config": {"app_secret": "s"}}, headers=h.admin()
    )
    assert r.status_code == 200, r.text
    await h.put_type("mp.notice", ["granted"], {})
    return channel


async def statuses(h: Harness) -> list[tuple[str, str | None]]:
    async with h.herald.db.read() as conn:
        rows = await conn.execute(
            select(deliveries.c.status, deliveries.c.reason_detail).order_by(deliveries.c.created_at)
        )
        return [(s, r) for s, r in rows]


async def test_no_grant_skips_with_the_reason(harness: Harness) -> None:
    channel = await setup(harness)
    await harness.trigger({"type": "mp.notice", "to": ["u1"], "data": {}})
    await harness.drain()
    assert channel.sent == []
    assert await statuses(harness) == [("skipped", "no subscription quota for wechat_mp:TPL-1")]


async def test_each_send_takes_one_grant(harness: Harness) -> None:
    channel = await setup(harness)
    r = await harness.client.post(
        "/v1/users/u1/wechat-subscriptions", json={"template_id": "TPL-1", "count": 2}, headers=harness.sender()
    )
    assert r.status_code == 201 and r.json() == {"user_id": "u1", "template_id": "TPL-1", "remaining": 2}
    for _ in range(3):
        await harness.trigger({"type": "mp.notice", "to": ["u1"], "data": {}})
    await harness.drain()
    assert channel.sent == ["u1", "u1"]
    assert await remaining(harness, "u1") == 0
    assert sorted(s for s, _ in await statuses(harness)) == ["sent", "sent", "skipped"]


async def test_refusal_zeroes_and_other_failures_give_the_grant_back(harness: Harness) -> None:
    channel = await setup(harness)
    harness.herald.settings.retry_base_seconds = 60  # the retry waits until the test moves it
    await harness.client.post(
        "/v1/users/u1/wechat-subscriptions", json={"template_id": "TPL-1", "count": 3}, headers=harness.sender()
    )
    channel.next_error = RetryableError("system busy", code="-1")
    await harness.trigger({"type": "mp.notice", "to": ["u1"], "data": {}})
    await harness.drain()
    assert await remaining(harness, "u1") == 3  # not used: given back for the retry
    async with harness.herald.db.write() as conn:
        await conn.execute(update(deliveries).values(next_attempt_at=utcnow()))
    channel.next_error = TerminalError("user refused", code="43101")
    await harness.drain()
    assert await remaining(harness, "u1") == 0
    assert await statuses(harness) == [("failed", "provider refused: user refused")]


async def test_bad_grant_input_is_422(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/users/u1/wechat-subscriptions", json={"template_id": "", "count": 0}, headers=harness.sender()
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"template_id", "count"}
