"""Every channel, end to end against its fake, with logging at DEBUG captured: no credential, token
or capability URL part of an account ever shows up in a log line (issue 7, item 5)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from herald.store import accounts as account_store
from tests.channels import test_dingtalk as dingtalk_tests
from tests.channels import test_sms_aliyun as aliyun_tests
from tests.channels import test_sms_tencent as tencent_tests
from tests.channels import test_webpush as webpush_tests
from tests.channels.fake_wechat import APP_ID, APP_SECRET, running_wechat
from tests.channels.fakes_robots import running_robot
from tests.conftest import Harness
from tests.engine import test_channels_end_to_end as end_to_end
from tests.engine.test_channels_end_to_end import USER
from tests.support import SECRET as WHSEC
from tests.support import Mailbox, Receiver, free_port, serve_asgi

FEISHU_HOOK = "7c1d2e3f-4a5b-46c7-8d9e-0f1a2b3c4d5e"
FEISHU_SECRET = "feishu-sign-secret-Qm8zR2"
WECOM_KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
WEBHOOK_QUERY_TOKEN = "q-token-8Hf3kLm9Zx"
WEBHOOK_PASSWORD = "basic-pw-5Tg7Yh"
WEBHOOK_BEARER = "bearer-7Ws2Qa9Pl4"
APPRISE_PASSWORD = "apprise-pw-3Jk8Lp"
SMTP_PASSWORD = "smtp-pw-9Xc4Vb"
PUSH_TOKEN = "dGhpcyBpcyBhIHB1c2ggdG9rZW4gMTIzNDU2Nzg5MA"


PROFILE = {**USER, "email": "u1@example.com"}


async def deliver(h: Harness, channel: str, config: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    return await end_to_end.deliver(h, channel, config, template, PROFILE)


@contextmanager
def smtp_server(port: int) -> Iterator[Mailbox]:
    def login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"herald", SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    mailbox = Mailbox()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=login, auth_required=True, auth_require_tls=False
    )
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


async def run_channel(h: Harness, channel: str) -> tuple[dict[str, Any], list[str]]:
    """Deliver one message on ``channel`` against its fake; the delivery and the secrets it used."""
    template: dict[str, Any] = {"msgtype": "text", "text": "验证码 ${code}"}
    if channel == "dingtalk":
        with running_robot(free_port(), {"errcode": 0, "errmsg": "ok"}) as (_, base):
            config = {"access_token": dingtalk_tests.TOKEN, "secret": dingtalk_tests.SECRET, "base_url": base}
            return await deliver(h, channel, config, template), [dingtalk_tests.TOKEN, dingtalk_tests.SECRET]
    if channel == "wecom":
        with running_robot(free_port(), {"errcode": 0, "errmsg": "ok"}) as (_, base):
            return await deliver(h, channel, {"key": WECOM_KEY, "base_url": base}, template), [WECOM_KEY]
    if channel == "feishu":
        with running_robot(free_port(), {"code": 0, "msg": "success"}) as (_, base):
            config = {"hook_token": FEISHU_HOOK, "secret": FEISHU_SECRET, "base_url": base}
            d = await deliver(h, channel, config, {"msg_type": "text", "text": "验证码 ${code}"})
            return d, [FEISHU_HOOK, FEISHU_SECRET]
    if channel in ("wechat_oa", "wechat_mp"):
        with running_wechat(free_port()) as (fake, base):
            if channel == "wechat_mp":
                await h.client.post(
                    "/v1/users/u1/wechat-subscriptions", json={"template_id": "TPL", "count": 1}, headers=h.sender()
                )
            config = {"app_id": APP_ID, "app_secret": APP_SECRET, "base_url": base}
            d = await deliver(h, channel, config, {"template_id": "TPL", "data": {"thing1": "${name}"}})
            return d, [APP_SECRET, fake.current]
    if channel == "sms_aliyun":
        fake_aliyun = aliyun_tests.FakeDysmsapi()
        with serve_asgi(fake_aliyun, free_port()) as base:
            config = {
                "access_key_id": aliyun_tests.KEY_ID,
                "access_key_secret": aliyun_tests.KEY_SECRET,
                "sign_name": "赫拉德",
                "base_url": base,
            }
            d = await deliver(h, channel, config, {"template_code": "SMS_1", "params": {"code": "${code}"}})
            return d, [aliyun_tests.KEY_SECRET]
    if channel == "sms_tencent":
        fake_tencent = tencent_tests.FakeTencentSms()
        with serve_asgi(fake_tencent, free_port()) as base:
            config = {
                "secret_id": tencent_tests.SECRET_ID,
                "secret_key": tencent_tests.SECRET_KEY,
                "sdk_app_id": tencent_tests.APP_ID,
                "sign_name": "赫拉德",
                "base_url": base,
            }
            d = await deliver(h, channel, config, {"template_id": "100", "params": ["${code}"]})
            return d, [tencent_tests.SECRET_KEY]
    if channel == "webpush":
        service = webpush_tests.PushService()
        with serve_asgi(service, free_port()) as base:
            service.origin = base
            service.browsers[PUSH_TOKEN] = webpush_tests.Browser()
            config = {"vapid_subject": "mailto:ops@example.com"}
            r = await h.client.put(
                "/v1/channel-accounts/webpush-acct", json={"channel": channel, "config": config}, headers=h.admin()
            )
            assert r.status_code == 200, r.text
            subscription = service.browsers[PUSH_TOKEN].subscription(f"{base}/push/{PUSH_TOKEN}")
            r = await h.client.post("/v1/me/webpush-subscriptions", json=subscription, headers=h.user("u1"))
            assert r.status_code == 201, r.text
            d = await deliver(h, channel, config, {"title": "验证码 ${code}"})
            async with h.herald.db.read() as conn:
                account = await account_store.get_account(conn, h.herald.box, "webpush-acct")
            assert account is not None
            return d, [account["config"]["vapid_private_key"], PUSH_TOKEN]
    if channel == "apprise":
        port = free_port()
        with running_robot(port, {}):
            config = {"urls": [f"json://herald:{APPRISE_PASSWORD}@127.0.0.1:{port}/hooks/apprise"]}
            d = await deliver(h, channel, config, {"title": "验证码", "body": "${code}"})
            return d, [APPRISE_PASSWORD]
    if channel == "webhook":
        receiver = Receiver()
        with serve_asgi(receiver, free_port()) as base:
            url = base.replace("http://", f"http://herald:{WEBHOOK_PASSWORD}@") + f"/hooks?token={WEBHOOK_QUERY_TOKEN}"
            config = {"url": url, "secret": WHSEC, "headers": {"Authorization": f"Bearer {WEBHOOK_BEARER}"}}
            d = await deliver(h, channel, config, {"title": "验证码 ${code}"})
            return d, [WHSEC, WEBHOOK_PASSWORD, WEBHOOK_QUERY_TOKEN, WEBHOOK_BEARER]
    if channel == "email":
        port = free_port()
        with smtp_server(port) as mailbox:
            config = {
                "host": "127.0.0.1",
                "port": port,
                "username": "herald",
                "password": SMTP_PASSWORD,
                "sender": "Herald <noreply@example.com>",
            }
            d = await deliver(h, channel, config, {"subject": "验证码", "text": "${code}"})
            assert len(mailbox.messages) == 1
            return d, [SMTP_PASSWORD]
    raise AssertionError(f"no fake for {channel}")


HTTPX_CHANNELS = {"dingtalk", "wecom", "feishu", "wechat_oa", "wechat_mp", "sms_aliyun", "sms_tencent", "webhook"}
CHANNELS = [
    "dingtalk",
    "wecom",
    "feishu",
    "wechat_oa",
    "wechat_mp",
    "sms_aliyun",
    "sms_tencent",
    "webpush",
    "apprise",
    "webhook",
    "email",
]


def test_every_installed_provider_channel_is_covered(harness_channels: list[str]) -> None:
    assert sorted(harness_channels) == sorted([*CHANNELS, "inapp", "sms"])


@pytest.fixture
def harness_channels() -> list[str]:
    from herald.channels import CHANNELS as INSTALLED

    return list(INSTALLED)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("channel", CHANNELS)
async def test_no_secret_reaches_the_logs(harness: Harness, channel: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    delivery, secrets = await run_channel(harness, channel)
    assert delivery["status"] == "sent", delivery
    # the text every handler would write: the formatted message and any exception text
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    assert lines, "nothing was logged: the test would prove nothing"
    if channel in HTTPX_CHANNELS:  # the request line is there, masked, not silenced
        assert any(line.startswith("httpx INFO HTTP Request: POST http://") for line in lines), lines
    for secret in secrets:
        leaked = [line for line in lines if secret in line]
        assert not leaked, f"{channel}: secret {secret[:6]}… in the logs: {leaked[:3]}"
