"""Every provider channel, end to end: trigger through the API, the worker sends to the provider's
fake, and the fake (or this test) checks the signature as the provider documents it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select, update

from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.channels import test_dingtalk as dingtalk_tests
from tests.channels import test_feishu as feishu_tests
from tests.channels import test_sms_aliyun as aliyun_tests
from tests.channels import test_sms_tencent as tencent_tests
from tests.channels import test_webpush as webpush_tests
from tests.channels.fake_wechat import APP_ID, APP_SECRET, running_wechat
from tests.channels.fakes_robots import running_robot
from tests.conftest import Harness
from tests.support import free_port, serve_asgi

USER = {"phone": "+8613800138000", "channels": {"wechat_oa_openid": "o-oa-1", "wechat_mp_openid": "o-mp-1"}}


async def deliver(
    h: Harness, channel: str, config: dict[str, Any], template: dict[str, Any], profile: dict[str, Any] = USER
) -> dict[str, Any]:
    r = await h.client.put(
        f"/v1/channel-accounts/{channel}-acct", json={"channel": channel, "config": config}, headers=h.admin()
    )
    assert r.status_code == 200, r.text
    await h.put_type(f"e2e.{channel}", [channel], {channel: template})
    await h.client.put("/v1/users/u1", json=profile, headers=h.admin())
    r = await h.trigger({"type": f"e2e.{channel}", "to": ["u1"], "data": {"code": "424242", "name": "张三"}})
    assert r.status_code == 202, r.text
    await h.drain()
    async with h.herald.db.read() as conn:
        return dict((await conn.execute(select(deliveries))).mappings().one())


@pytest.fixture
def sms_aliyun_fake() -> Iterator[tuple[Any, str]]:
    fake = aliyun_tests.FakeDysmsapi()
    with serve_asgi(fake, free_port()) as base:
        yield fake, base


@pytest.fixture
def sms_tencent_fake() -> Iterator[tuple[Any, str]]:
    fake = tencent_tests.FakeTencentSms()
    with serve_asgi(fake, free_port()) as base:
        yield fake, base


async def test_sms_aliyun(harness: Harness, sms_aliyun_fake: tuple[Any, str]) -> None:
    fake, base = sms_aliyun_fake
    config = {
        "access_key_id": aliyun_tests.KEY_ID,
        "access_key_secret": aliyun_tests.KEY_SECRET,
        "sign_name": "赫拉德",
        "base_url": base,
    }
    d = await deliver(harness, "sms_aliyun", config, {"template_code": "SMS_1", "params": {"code": "${code}"}})
    assert d["status"] == "sent", d
    (request,) = fake.requests
    assert request.problem is None  # the fake recomputed the ACS3 signature and it matched
    assert "424242" in unquote(request.raw_query) and d["id"] in unquote(request.raw_query)


async def test_sms_tencent(harness: Harness, sms_tencent_fake: tuple[Any, str]) -> None:
    fake, base = sms_tencent_fake
    config = {
        "secret_id": tencent_tests.SECRET_ID,
        "secret_key": tencent_tests.SECRET_KEY,
        "sdk_app_id": tencent_tests.APP_ID,
        "sign_name": "赫拉德",
        "base_url": base,
    }
    d = await deliver(harness, "sms_tencent", config, {"template_id": "100", "params": ["${code}"]})
    assert d["status"] == "sent", d
    (request,) = fake.requests
    assert request.problem is None  # TC3 signature recomputed by the fake
    assert request.json()["TemplateParamSet"] == ["424242"]


@pytest.mark.parametrize("channel", ["wechat_oa", "wechat_mp"])
async def test_wechat(harness: Harness, channel: str) -> None:
    with running_wechat(free_port()) as (fake, base):
        if channel == "wechat_mp":
            await harness.client.post(
                "/v1/users/u1/wechat-subscriptions", json={"template_id": "TPL", "count": 1}, headers=harness.sender()
            )
        config = {"app_id": APP_ID, "app_secret": APP_SECRET, "base_url": base}
        d = await deliver(harness, channel, config, {"template_id": "TPL", "data": {"thing1": "${name}"}})
        assert d["status"] == "sent", d
        (send,) = fake.sends
        assert send.json()["data"] == {"thing1": {"value": "张三"}}
        assert send.json()["touser"] == ("o-oa-1" if channel == "wechat_oa" else "o-mp-1")
        assert len(fake.token_calls) == 1


async def test_dingtalk(harness: Harness) -> None:
    with running_robot(free_port(), {"errcode": 0, "errmsg": "ok"}) as (robot, base):
        config = {"access_token": dingtalk_tests.TOKEN, "secret": dingtalk_tests.SECRET, "base_url": base}
        d = await deliver(harness, "dingtalk", config, {"msgtype": "text", "text": "验证码 ${code}"})
        assert d["status"] == "sent", d
        (request,) = robot.requests
        q = request.query
        assert q["sign"] == dingtalk_tests.documented_sign(dingtalk_tests.SECRET, q["timestamp"])
        assert "424242" in request.json()["text"]["content"]


async def test_feishu(harness: Harness) -> None:
    with running_robot(free_port(), {"code": 0, "msg": "success"}) as (robot, base):
        config = {"hook_token": "hook-1", "secret": feishu_tests.SECRET, "base_url": base}
        d = await deliver(harness, "feishu", config, {"msg_type": "text", "text": "验证码 ${code}"})
        assert d["status"] == "sent", d
        (request,) = robot.requests
        body = request.json()
        assert body["sign"] == feishu_tests.documented_sign(body["timestamp"], feishu_tests.SECRET)
        assert request.path == "/open-apis/bot/v2/hook/hook-1"


async def test_wecom(harness: Harness) -> None:
    with running_robot(free_port(), {"errcode": 0, "errmsg": "ok"}) as (robot, base):
        d = await deliver(harness, "wecom", {"key": "k-1", "base_url": base}, {"msgtype": "text", "text": "码 ${code}"})
        assert d["status"] == "sent", d
        (request,) = robot.requests
        assert request.query == {"key": "k-1"} and request.json()["text"]["content"] == "码 424242"


async def test_webpush(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Account saved without keys (generated), the browser subscribes through the API, the push
    service verifies the VAPID JWT and decrypts the payload (RFC 8291 and http_ece)."""
    service = webpush_tests.PushService()
    with serve_asgi(service, free_port()) as base:
        service.origin = base
        r = await harness.client.put(
            "/v1/channel-accounts/push",
            json={"channel": "webpush", "config": {"vapid_subject": "mailto:ops@example.com"}},
            headers=harness.admin(),
        )
        assert r.status_code == 200, r.text
        public_key = (await harness.client.get("/v1/webpush/public-key")).json()["public_key"]
        service.browsers["b1"] = webpush_tests.Browser()
        subscription = service.browsers["b1"].subscription(f"{base}/push/b1")
        r = await harness.client.post("/v1/me/webpush-subscriptions", json=subscription, headers=harness.user("u1"))
        assert r.status_code == 201, r.text
        d = await deliver(harness, "webpush", {"vapid_subject": "mailto:ops@example.com"}, {"title": "验证码 ${code}"})
        assert d["status"] == "sent", d
        (request,) = service.requests
        assert request.vapid_key == public_key and request.claims["sub"] == "mailto:ops@example.com"
        assert request.payload["title"] == "验证码 424242" and request.payload["delivery_id"] == d["id"]


async def test_apprise(harness: Harness) -> None:
    port = free_port()
    with running_robot(port, {}) as (receiver, _):
        config = {"urls": [f"json://127.0.0.1:{port}/hooks/apprise"]}
        d = await deliver(harness, "apprise", config, {"title": "验证码", "body": "${code}"})
        assert d["status"] == "sent", d
        (request,) = receiver.requests
        assert (request.json()["title"], request.json()["message"]) == ("验证码", "424242")


async def test_sms_route_fails_over_to_the_other_provider(
    harness: Harness, sms_aliyun_fake: tuple[Any, str], sms_tencent_fake: tuple[Any, str]
) -> None:
    """``sms`` sends through the weighted provider account; after Aliyun's system error the retry
    goes through Tencent (a failover-only account, weight 0)."""
    aliyun, aliyun_base = sms_aliyun_fake
    tencent, tencent_base = sms_tencent_fake
    aliyun.answer = {"Code": "isp.SYSTEM_ERROR", "Message": "system busy", "RequestId": "R-9"}
    accounts = {
        "ali": {
            "channel": "sms_aliyun",
            "config": {
                "access_key_id": aliyun_tests.KEY_ID,
                "access_key_secret": aliyun_tests.KEY_SECRET,
                "sign_name": "赫拉德",
                "base_url": aliyun_base,
            },
        },
        "tx": {
            "channel": "sms_tencent",
            "config": {
                "secret_id": tencent_tests.SECRET_ID,
                "secret_key": tencent_tests.SECRET_KEY,
                "sdk_app_id": tencent_tests.APP_ID,
                "sign_name": "赫拉德",
                "base_url": tencent_base,
                "weight": 0,
            },
        },
    }
    for name, body in accounts.items():
        r = await harness.client.put(f"/v1/channel-accounts/{name}", json=body, headers=harness.admin())
        assert r.status_code == 200, r.text
    r = await harness.client.put("/v1/notification-types/otp", json={"channels": ["sms"]}, headers=harness.admin())
    assert r.status_code == 201
    r = await harness.trigger({"type": "otp", "to": ["u1"], "data": {"code": "1"}})
    assert r.status_code == 422 and "sms_aliyun or sms_tencent" in r.text  # no provider template yet
    await harness.put_type(
        "otp",
        ["sms"],
        {
            "sms_aliyun": {"template_code": "SMS_1", "params": {"code": "${code}"}},
            "sms_tencent": {"template_id": "100", "params": ["${code}"]},
        },
    )
    await harness.client.put("/v1/users/u1", json=USER, headers=harness.admin())
    r = await harness.trigger({"type": "otp", "to": ["u1"], "data": {"code": "424242"}})
    assert r.status_code == 202, r.text
    await harness.drain()
    async with harness.herald.db.write() as conn:
        await conn.execute(update(deliveries).values(next_attempt_at=utcnow()))
    await harness.drain()
    status = (await harness.client.get(f"/v1/notifications/{r.json()['id']}", headers=harness.reader())).json()
    (d,) = status["deliveries"]
    assert (d["channel"], d["status"], d["account"]) == ("sms", "sent", "tx")
    assert [(a["outcome"], a["code"]) for a in d["attempt_log"]] == [("retry", "isp.SYSTEM_ERROR"), ("sent", None)]
    assert len(aliyun.requests) == 1 and len(tencent.requests) == 1
    assert tencent.requests[0].json()["TemplateParamSet"] == ["424242"]
