"""SMS delivery reports: posted by the provider with the account's token, sent -> delivered / undelivered."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from herald.store.tables import deliveries
from tests.conftest import Harness

ALIYUN = {"access_key_id": "LTAI-test", "access_key_secret": "s3cr3t", "sign_name": "赫拉德"}
TENCENT = {"secret_id": "AKID-test", "secret_key": "s3cr3t", "sdk_app_id": "1400000000", "sign_name": "赫拉德"}


async def sent_delivery(h: Harness, channel: str, config: dict[str, Any], template: dict[str, Any]) -> tuple[str, str]:
    """An account, and a delivery of it already 'sent' with provider id BIZ-1; returns (id, callback url)."""
    r = await h.client.put(
        f"/v1/channel-accounts/{channel}-main", json={"channel": channel, "config": config}, headers=h.admin()
    )
    assert r.status_code == 200, r.text
    callback_url = r.json()["callback_url"]
    await h.put_type(f"{channel}.otp", [channel], {channel: template})
    await h.client.put("/v1/users/u1", json={"phone": "13800138000"}, headers=h.admin())
    await h.trigger({"type": f"{channel}.otp", "to": ["u1"], "data": {"code": "1234"}})
    async with h.herald.db.write() as conn:
        await conn.execute(
            update(deliveries).values(status="sent", provider_message_id="BIZ-1", account=f"{channel}-main")
        )
        delivery_id = (await conn.execute(select(deliveries.c.id))).scalar_one()
    return delivery_id, callback_url


async def status_of(h: Harness) -> tuple[str, str | None]:
    async with h.herald.db.read() as conn:
        row = (await conn.execute(select(deliveries.c.status, deliveries.c.reason_detail))).one()
    return row[0], row[1]


async def test_aliyun_report_by_out_id(harness: Harness) -> None:
    delivery_id, url = await sent_delivery(
        harness, "sms_aliyun", ALIYUN, {"template_code": "SMS_1", "params": {"code": "${code}"}}
    )
    assert url.startswith("/v1/callbacks/sms_aliyun/sms_aliyun-main?token=")
    report = [
        {
            "phone_number": "13800138000",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "biz_id": "BIZ-1",
            "out_id": delivery_id,
            "send_time": "2026-11-27 10:00:00",
            "report_time": "2026-11-27 10:00:05",
            "sms_size": "1",
        }
    ]
    r = await harness.client.post(url, content=json.dumps(report))
    assert r.status_code == 200 and r.json() == {"code": 0, "msg": "成功"}
    assert await status_of(harness) == ("delivered", None)


async def test_tencent_failure_report_by_sid(harness: Harness) -> None:
    _, url = await sent_delivery(harness, "sms_tencent", TENCENT, {"template_id": "100", "params": ["${code}"]})
    report = [
        {
            "user_receive_time": "2026-11-27 10:00:05",
            "nationcode": "86",
            "mobile": "13800138000",
            "report_status": "FAIL",
            "errmsg": "MK:0004",
            "description": "用户关机",
            "sid": "BIZ-1",
        }
    ]
    r = await harness.client.post(url, content=json.dumps(report))
    assert r.status_code == 200 and r.json() == {"result": 0, "errmsg": "OK"}
    assert await status_of(harness) == ("undelivered", "MK:0004 用户关机")
    # a late duplicate report changes nothing
    ok = [{**report[0], "report_status": "SUCCESS"}]
    assert (await harness.client.post(url, content=json.dumps(ok))).status_code == 200
    assert (await status_of(harness))[0] == "undelivered"


async def test_callbacks_are_authenticated_and_checked(harness: Harness) -> None:
    delivery_id, url = await sent_delivery(
        harness, "sms_aliyun", ALIYUN, {"template_code": "SMS_1", "params": {"code": "${code}"}}
    )
    path, _, _ = url.partition("?")
    report = json.dumps([{"success": True, "out_id": delivery_id}])
    assert (await harness.client.post(f"{path}?token=wrong", content=report)).status_code == 401
    assert (await harness.client.post(path, content=report)).status_code == 422  # no token at all
    other = url.replace("sms_aliyun-main", "other-account")
    assert (await harness.client.post(other, content=report)).status_code in (401, 404)
    assert (await harness.client.post("/v1/callbacks/email/x?token=t", content=report)).status_code == 404
    r = await harness.client.post(url, content=b"{not json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    assert (await status_of(harness))[0] == "sent"
