"""Triggering with chosen accounts, and the account each attempt used."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select

from herald.store.tables import deliveries, delivery_attempts, notifications
from herald.store.types import utcnow
from tests.api.test_accounts import fields_named
from tests.api.test_types import put_type
from tests.conftest import Harness


@pytest.fixture
async def otp(harness: Harness, routing_accounts: None) -> str:
    r = await put_type(harness, "otp", ["webhook", "sms"], accounts={"sms": ["sms-a"], "webhook": ["hook"]})
    assert r.status_code == 201, r.text
    r = await harness.client.put(
        "/v1/notification-types/otp/templates/sms_aliyun",
        json={"template_code": "SMS_1", "params": {"code": "1234"}},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    return "otp"


async def count_notifications(h: Harness) -> int:
    async with h.herald.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(notifications))).scalar_one())


async def test_trigger_accounts_override_the_types_per_channel(harness: Harness, otp: str) -> None:
    r = await harness.trigger({"type": otp, "to": ["u1"], "data": {}, "accounts": {"webhook": ["hook2", "hook"]}})
    assert r.status_code == 202, r.text
    async with harness.herald.db.read() as conn:
        stored = (await conn.execute(select(notifications.c.accounts))).scalar_one()
    assert stored == {"sms": ["sms-a"], "webhook": ["hook2", "hook"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accounts": {"email": ["hook"]}}, "accounts.email"),
        ({"accounts": {"webhook": ["nope"]}}, "accounts.webhook.0"),
        ({"accounts": {"webhook": ["hook", "sms-t"]}}, "accounts.webhook.1"),
        ({"accounts": {"sms": ["hook2"]}}, "accounts.sms.0"),
        # checked against the trigger's own channels when it gives them
        ({"channels": ["sms"], "accounts": {"webhook": ["hook"]}}, "accounts.webhook"),
        ({"accounts": {"webhook": []}}, "accounts.webhook"),
    ],
)
async def test_bad_trigger_accounts_are_422_and_create_nothing(
    harness: Harness, otp: str, body: dict[str, Any], field: str
) -> None:
    r = await harness.trigger({"type": otp, "to": ["u1"], "data": {}, **body}, **{"Idempotency-Key": "k1"})
    assert fields_named(r) == [field]
    assert await count_notifications(harness) == 0
    # the key was released: the corrected request goes through
    r = await harness.trigger({"type": otp, "to": ["u1"], "data": {}}, **{"Idempotency-Key": "k1"})
    assert r.status_code == 202, r.text


async def test_an_unknown_type_is_named_before_its_accounts(harness: Harness, routing_accounts: None) -> None:
    r = await harness.trigger({"type": "nope", "to": ["u1"], "data": {}, "accounts": {"webhook": ["x"]}})
    assert fields_named(r) == ["type"]


async def test_each_attempt_names_its_account(harness: Harness, otp: str) -> None:
    r = await harness.trigger({"type": otp, "to": ["u1"], "data": {}, "channels": ["webhook"]})
    nid = r.json()["id"]
    now = utcnow()
    async with harness.herald.db.write() as conn:
        delivery_id = (await conn.execute(select(deliveries.c.id))).scalar_one()
        await conn.execute(
            insert(delivery_attempts).values(
                delivery_id=delivery_id, attempt=1, started_at=now, finished_at=now, outcome="retry", account="hook"
            )
        )
    status = (await harness.client.get(f"/v1/notifications/{nid}", headers=harness.reader())).json()
    (d,) = status["deliveries"]
    assert [(a["attempt"], a["outcome"], a["account"]) for a in d["attempt_log"]] == [(1, "retry", "hook")]
