"""SMS-style routing: weighted accounts, and failover to another account after a retryable error."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr
from sqlalchemy import select, update

from herald.channels.base import Channel, ChannelSettings, OutboundMessage, SendResult
from herald.core.errors import RetryableError
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import Harness


class _Settings(ChannelSettings):
    key: SecretStr
    weight: int = Field(default=1, ge=0)
    broken: bool = False


class FlakySms(Channel):
    """Accounts marked ``broken`` fail retryably; every try is recorded as (account key, delivery)."""

    name = "flaky_sms"
    Settings = _Settings
    requires_template = False

    def __init__(self) -> None:
        self.tries: list[tuple[str, str]] = []

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        self.tries.append((settings.key.get_secret_value(), message.delivery_id))
        if settings.broken:
            raise RetryableError("gateway busy", code="isp.SYSTEM_ERROR")
        return SendResult(provider_message_id=f"{settings.key.get_secret_value()}-ok")


async def test_a_retry_goes_to_the_other_account_of_its_group(harness: Harness) -> None:
    channel = FlakySms()
    harness.herald.channels["flaky_sms"] = channel
    for name, config in {
        "primary": {"key": "primary", "weight": 1, "broken": True},
        "backup": {"key": "backup", "weight": 0},
    }.items():
        r = await harness.client.put(
            f"/v1/channel-accounts/{name}",
            json={"channel": "flaky_sms", "config": config, "group": "otp"},
            headers=harness.admin(),
        )
        assert r.status_code == 200, r.text
    await harness.put_type("otp", ["flaky_sms"], {}, priority="high")
    r = await harness.trigger({"type": "otp", "to": ["u1"], "data": {}})
    await harness.drain()
    assert [k for k, _ in channel.tries] == ["primary"]  # weight 0: backup is failover only
    async with harness.herald.db.write() as conn:
        await conn.execute(update(deliveries).values(next_attempt_at=utcnow()))
    await harness.drain()
    assert [k for k, _ in channel.tries] == ["primary", "backup"]
    async with harness.herald.db.read() as conn:
        row = (await conn.execute(select(deliveries))).mappings().one()
    assert row["status"] == "sent" and row["account"] == "backup" and row["provider_message_id"] == "backup-ok"
    status = (await harness.client.get(f"/v1/notifications/{r.json()['id']}", headers=harness.reader())).json()
    (d,) = status["deliveries"]
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry", "sent"]
    assert d["attempt_log"][0]["code"] == "isp.SYSTEM_ERROR"
    assert [a["account"] for a in d["attempt_log"]] == ["primary", "backup"]
