"""Notification types: the accounts a type sends each channel with (``accounts``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_accounts import fields_named
from tests.conftest import Harness


async def put_type(h: Harness, key: str, channels: list[str], **extra: Any) -> httpx.Response:
    return await h.client.put(f"/v1/notification-types/{key}", json={"channels": channels, **extra}, headers=h.admin())


async def test_type_accounts_round_trip(harness: Harness, routing_accounts: None) -> None:
    chosen = {"sms": ["sms-t", "sms-a"], "webhook": ["hook2"]}
    r = await put_type(harness, "otp", ["sms", "webhook"], accounts=chosen)
    assert r.status_code == 201, r.text
    assert r.json()["accounts"] == chosen
    r = await harness.client.get("/v1/notification-types/otp", headers=harness.reader())
    assert r.json()["accounts"] == chosen
    items = (await harness.client.get("/v1/notification-types", headers=harness.reader())).json()["items"]
    assert items[0]["accounts"] == chosen
    # without it, a type sends with the channels' default accounts
    r = await put_type(harness, "otp", ["sms"])
    assert r.status_code == 200 and r.json()["accounts"] is None


@pytest.mark.parametrize(
    ("choice", "field"),
    [
        ({"email": ["hook"]}, "accounts.email"),  # not one of the type's channels
        ({"sms_aliyun": ["sms-a"]}, "accounts.sms_aliyun"),  # a provider, not a channel of the type
        ({"webhook": ["hook", "nope"]}, "accounts.webhook.1"),  # no such account
        ({"webhook": ["sms-a"]}, "accounts.webhook.0"),  # an account of another channel
        ({"sms": ["hook"]}, "accounts.sms.0"),  # not an account of an SMS provider
        ({"webhook": []}, "accounts.webhook"),  # 1 to 20 names
        ({"webhook": ["hook"] * 21}, "accounts.webhook"),
        ({"webhook": ["not a name"]}, "accounts.webhook.0"),
    ],
)
async def test_bad_type_accounts_are_422_and_create_nothing(
    harness: Harness, routing_accounts: None, choice: dict[str, Any], field: str
) -> None:
    r = await put_type(harness, "otp", ["sms", "webhook"], accounts=choice)
    assert fields_named(r) == [field]
    assert (await harness.client.get("/v1/notification-types/otp", headers=harness.reader())).status_code == 404
