"""Channel accounts: routing groups, and secrets kept across a masked round-trip."""

from __future__ import annotations

from typing import Any

import httpx

from herald.store import accounts as account_store
from tests.conftest import Harness

ALIYUN = {"access_key_id": "LTAI-test", "access_key_secret": "s3cr3t", "sign_name": "赫拉德"}
TENCENT = {"secret_id": "AKID-test", "secret_key": "s3cr3t", "sdk_app_id": "1400000000", "sign_name": "赫拉德"}


async def put_account(h: Harness, name: str, channel: str, config: dict[str, Any], **extra: Any) -> httpx.Response:
    return await h.client.put(
        f"/v1/channel-accounts/{name}", json={"channel": channel, "config": config, **extra}, headers=h.admin()
    )


def fields_named(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    return [e["field"] for e in r.json()["errors"]]


async def test_the_routing_group_round_trips(harness: Harness) -> None:
    r = await put_account(harness, "sms-a", "sms_aliyun", ALIYUN, group="sms-cn")
    assert r.status_code == 200, r.text
    assert r.json()["group"] == "sms-cn"
    r = await put_account(harness, "sms-t", "sms_tencent", TENCENT, group="sms-cn")
    assert r.json()["group"] == "sms-cn"
    r = await put_account(harness, "hook", "webhook", {"url": "http://127.0.0.1:9/h", "secret": "x"})
    assert r.json()["group"] is None

    one = (await harness.client.get("/v1/channel-accounts/sms-a", headers=harness.admin())).json()
    assert one["group"] == "sms-cn"
    listed = (await harness.client.get("/v1/channel-accounts", headers=harness.admin())).json()["items"]
    assert {a["name"]: a["group"] for a in listed} == {"hook": None, "sms-a": "sms-cn", "sms-t": "sms-cn"}
    async with harness.herald.db.read() as conn:
        routed = await account_store.accounts_for(conn, harness.herald.box, ["sms_aliyun", "sms_tencent"])
    assert {a.name: a.group for a in routed} == {"sms-a": "sms-cn", "sms-t": "sms-cn"}

    # a PUT replaces the account: without a group it leaves the group
    r = await put_account(harness, "sms-a", "sms_aliyun", one["config"])
    assert r.status_code == 200, r.text
    assert r.json()["group"] is None


async def test_a_bad_group_is_422_and_saves_nothing(harness: Harness) -> None:
    for group in ("has space", "", "-leading-dash", "x" * 201, 7):
        r = await put_account(harness, "sms-a", "sms_aliyun", ALIYUN, group=group)
        assert fields_named(r) == ["group"], group
    assert (await harness.client.get("/v1/channel-accounts", headers=harness.admin())).json()["items"] == []


async def test_changing_only_the_group_keeps_the_stored_secret(harness: Harness) -> None:
    shown = (await put_account(harness, "sms-a", "sms_aliyun", ALIYUN)).json()
    assert shown["config"]["access_key_secret"] == "********"
    r = await put_account(harness, "sms-a", "sms_aliyun", shown["config"], group="backup")
    assert r.status_code == 200, r.text
    async with harness.herald.db.read() as conn:
        stored = await account_store.get_account(conn, harness.herald.box, "sms-a")
    assert stored is not None
    assert stored["config"]["access_key_secret"] == "s3cr3t" and stored["group"] == "backup"


async def test_a_mask_sent_for_another_channel_is_refused(harness: Harness) -> None:
    shown = (await put_account(harness, "acct", "sms_aliyun", ALIYUN)).json()
    # the same name now for Tencent: the Aliyun secret is no Tencent secret
    masked = shown["config"]["access_key_secret"]
    r = await put_account(harness, "acct", "sms_tencent", {**TENCENT, "secret_key": masked})
    assert fields_named(r) == ["config.secret_key"]
    r = await put_account(harness, "acct", "inapp", {})
    assert fields_named(r) == ["channel"]
