"""AliyunSmsChannel against a fake Dysmsapi (uvicorn on loopback) that verifies ACS3 signatures itself.

The fake recomputes every signature from Alibaba Cloud's "V3 版本请求体&签名机制" page, written out here
and never calling herald's ``acs3_sign``; the signer is also pinned to the page's worked example and
compared with the official SDK's signer (``alibabacloud_openapi_util`` / ``alibabacloud_tea_openapi``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.sms_aliyun import (
    AliyunSmsChannel,
    AliyunSmsSettings,
    AliyunSmsTemplate,
    acs3_sign,
)
from herald.core.errors import RetryableError, SkipDelivery, TerminalError
from tests.support import serve_asgi

KEY_ID = "LTAI5tHeraldTestKeyId"
KEY_SECRET = "herald-test-access-key-secret"
SIGN_NAME = "赫拉德通知"
CONTENT = {"template_code": "SMS_154950909", "params": {"code": "123456", "product": "充值 & 提现"}}


# --- the provider's side, from the V3 signature documentation --------------------------------------


def rfc3986(value: str) -> str:
    # "字符A~Z、a~z、0~9以及字符-、_、.、~不编码", space → %20, * → %2A.
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.~") else quote(c, safe="") for c in value)


def verify_acs3(method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes) -> str | None:
    """``None`` when the request is correctly signed with KEY_SECRET, else what is wrong."""
    match = re.fullmatch(
        r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})",
        headers.get("authorization", ""),
    )
    if not match:
        return "malformed Authorization"
    credential, signed, signature = match.groups()
    if credential != KEY_ID:
        return "InvalidAccessKeyId.NotFound"
    names = signed.split(";")
    required = {"host"} | {n for n in headers if n.startswith("x-acs-")} | ({"content-type"} & set(headers))
    if names != sorted(names) or not required <= set(names):
        return f"SignedHeaders must list {sorted(required)} in order"
    if headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
        return "x-acs-content-sha256 is not the body's hash"
    sent_at = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if abs(datetime.now(UTC) - sent_at) > timedelta(minutes=15):
        return "x-acs-date is not within 15 minutes"
    pairs = sorted((rfc3986(k), rfc3986(v)) for k, v in parse_qsl(raw_query, keep_blank_values=True))
    canonical_request = (
        f"{method}\n{path}\n"
        + "&".join(f"{k}={v}" for k, v in pairs)
        + "\n"
        + "".join(f"{n}:{headers[n].strip()}\n" for n in names)
        + "\n"
        + f"{signed}\n"
        + hashlib.sha256(body).hexdigest()
    )
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    expected = hmac.new(KEY_SECRET.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "SignatureDoesNotMatch"


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    problem: str | None

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))


@dataclass
class FakeDysmsapi:
    """Answers like dysmsapi.aliyuncs.com: a bad signature is refused; otherwise ``answer`` is sent."""

    status: int = 200
    answer: dict[str, Any] | None = None
    raw: bytes | None = None
    delay: float = 0
    requests: list[Request] = field(default_factory=list)

    def reset(self) -> None:
        self.status, self.answer, self.raw, self.delay = 200, None, None, 0
        self.requests.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode() for k, v in scope["headers"]}
        raw_query = scope["query_string"].decode()
        problem = verify_acs3(scope["method"], scope["path"], raw_query, headers, body)
        self.requests.append(Request(scope["method"], scope["path"], raw_query, headers, body, problem))
        await asyncio.sleep(self.delay)
        status, payload = self.status, self.answer
        if problem:
            status = 400 if problem != "InvalidAccessKeyId.NotFound" else 404
            payload = {"RequestId": "R-1", "Code": problem.split(" ")[0], "Message": problem}
        elif payload is None:
            payload = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "R-0"}
        data = self.raw if self.raw is not None and not problem else json.dumps(payload).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": data})


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_server(port_factory: Callable[[], int]) -> Iterator[tuple[FakeDysmsapi, str]]:
    fake = FakeDysmsapi()
    with serve_asgi(fake, port_factory()) as base:
        yield fake, base


@pytest.fixture
def fake(fake_server: tuple[FakeDysmsapi, str]) -> FakeDysmsapi:
    fake_server[0].reset()
    return fake_server[0]


@pytest.fixture
def base_url(fake_server: tuple[FakeDysmsapi, str]) -> str:
    return fake_server[1]


@pytest.fixture
async def channel() -> AsyncIterator[AliyunSmsChannel]:
    chan = AliyunSmsChannel()
    yield chan
    await chan.aclose()


@pytest.fixture
def sms_message(make_message: Callable[..., OutboundMessage]) -> Callable[..., OutboundMessage]:
    def make(**overrides: Any) -> OutboundMessage:
        return make_message(**{"content": CONTENT, **overrides})

    return make


def settings(base_url: str, **overrides: Any) -> AliyunSmsSettings:
    fields = {"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET, "sign_name": SIGN_NAME, "base_url": base_url}
    return AliyunSmsSettings.model_validate({**fields, **overrides})


# --- end to end ----------------------------------------------------------------------------------------


def test_registered_with_its_template_model() -> None:
    assert CHANNELS["sms_aliyun"] is AliyunSmsChannel
    assert AliyunSmsChannel.Template is AliyunSmsTemplate
    assert AliyunSmsChannel.requires_template


async def test_sends_a_signed_sendsms_request(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    message = sms_message()

    result = await channel.send(message, settings(base_url))

    assert result.provider_message_id == "900619746936498440^0"
    [request] = fake.requests
    assert request.problem is None
    assert (request.method, request.path, request.body) == ("POST", "/", b"")
    assert request.query == {
        "PhoneNumbers": "13800000000",
        "SignName": SIGN_NAME,
        "TemplateCode": "SMS_154950909",
        "TemplateParam": '{"code":"123456","product":"充值 & 提现"}',
        "OutId": message.delivery_id,
    }
    assert json.loads(request.query["TemplateParam"]) == CONTENT["params"]
    headers = request.headers
    assert headers["x-acs-action"] == "SendSms"
    assert headers["x-acs-version"] == "2017-05-25"
    assert headers["host"] == base_url.removeprefix("http://")
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-acs-signature-nonce"])
    assert headers["authorization"].startswith(
        f"ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders="
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="
    )
    # Spaces and '&' travel as %20 / %26, exactly as signed: no '+' a server might read differently.
    assert "%20%26%20" in request.raw_query and "+" not in request.raw_query


async def test_every_attempt_gets_a_fresh_nonce_and_keeps_the_out_id(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(sms_message(attempt=1), settings(base_url))
    await channel.send(sms_message(attempt=2), settings(base_url))

    first, second = fake.requests
    assert first.headers["x-acs-signature-nonce"] != second.headers["x-acs-signature-nonce"]
    assert first.query["OutId"] == second.query["OutId"]


@pytest.mark.parametrize(
    ("phone", "sent"),
    [("+8613800000000", "13800000000"), ("13800000000", "13800000000"), ("+852 9123 4567", "85291234567")],
)
async def test_phone_numbers_in_aliyun_form(
    channel: AliyunSmsChannel,
    fake: FakeDysmsapi,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    phone: str,
    sent: str,
) -> None:
    await channel.send(sms_message(recipient=Recipient(id="u2", phone=phone)), settings(base_url))

    assert fake.requests[0].query["PhoneNumbers"] == sent


async def test_a_template_without_variables_sends_no_template_param(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(sms_message(content={"template_code": "SMS_1"}), settings(base_url))

    assert "TemplateParam" not in fake.requests[0].query
    assert fake.requests[0].problem is None


async def test_no_phone_is_skipped_without_a_request(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(SkipDelivery, match="no phone number"):
        await channel.send(sms_message(recipient=Recipient(id="u3")), settings(base_url))

    assert fake.requests == []


@pytest.mark.parametrize("content", [{}, {"template_code": ""}, {"template_code": "SMS_1", "params": ["x"]}])
async def test_a_broken_template_is_terminal(
    channel: AliyunSmsChannel, base_url: str, sms_message: Callable[..., OutboundMessage], content: dict[str, Any]
) -> None:
    with pytest.raises(TerminalError, match="template"):
        await channel.send(sms_message(content=content), settings(base_url))


async def test_a_wrong_secret_is_refused_by_the_fake_and_terminal(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError) as raised:
        await channel.send(sms_message(), settings(base_url, access_key_secret="not-the-secret"))

    assert raised.value.code == "SignatureDoesNotMatch"
    assert fake.requests[0].problem == "SignatureDoesNotMatch"


async def test_an_unknown_key_id_is_terminal(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError) as raised:
        await channel.send(sms_message(), settings(base_url, access_key_id="LTAI-unknown"))

    assert raised.value.code == "InvalidAccessKeyId.NotFound"


# --- error matrix --------------------------------------------------------------------------------------

RETRYABLE, TERMINAL, DEFERRED = "retryable", "terminal", "deferred"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (200, "isp.SYSTEM_ERROR", RETRYABLE),
        (400, "Throttling.User", RETRYABLE),
        (400, "Throttling.Api", RETRYABLE),
        (200, "isv.BUSINESS_LIMIT_CONTROL", DEFERRED),
        (200, "isv.DAY_LIMIT_CONTROL", DEFERRED),
        (200, "isv.MOBILE_NUMBER_ILLEGAL", TERMINAL),
        (200, "isv.TEMPLATE_MISSING_PARAMETERS", TERMINAL),
        (200, "isv.AMOUNT_NOT_ENOUGH", TERMINAL),
        (200, "isv.SMS_TEMPLATE_ILLEGAL", TERMINAL),
        (200, "isv.SMS_SIGNATURE_ILLEGAL", TERMINAL),
        (404, "InvalidAccessKeyId.NotFound", TERMINAL),
        (400, "SignatureDoesNotMatch", TERMINAL),
        (200, "isv.SOMETHING_NEW", TERMINAL),
        (503, "ServiceUnavailable", RETRYABLE),
        (500, "InternalError", RETRYABLE),
    ],
)
async def test_error_codes_are_classified(
    channel: AliyunSmsChannel,
    fake: FakeDysmsapi,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    status: int,
    code: str,
    kind: str,
) -> None:
    fake.status = status
    fake.answer = {"RequestId": "R-9", "Code": code, "Message": "说明 " + code}

    expected = TerminalError if kind == TERMINAL else RetryableError
    with pytest.raises(expected) as raised:
        await channel.send(sms_message(), settings(base_url))

    error = raised.value
    assert type(error) is expected
    assert error.code == code
    assert code in error.message and "说明" in error.message
    if isinstance(error, RetryableError):
        assert error.retry_after == (3600 if kind == DEFERRED else None)
        assert error.message.startswith("deferred") == (kind == DEFERRED)


@pytest.mark.parametrize(("status", "expected"), [(500, RetryableError), (502, RetryableError), (403, TerminalError)])
async def test_non_json_answers_are_classified_by_status(
    channel: AliyunSmsChannel,
    fake: FakeDysmsapi,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    status: int,
    expected: type[Exception],
) -> None:
    fake.status, fake.raw = status, b"<html>Bad Gateway</html>"

    with pytest.raises(expected) as raised:
        await channel.send(sms_message(), settings(base_url))

    assert raised.value.code == str(status)  # type: ignore[attr-defined]


async def test_nothing_listening_is_retryable(
    channel: AliyunSmsChannel, port_factory: Callable[[], int], sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError) as raised:
        await channel.send(sms_message(), settings(f"http://127.0.0.1:{port_factory()}"))

    assert raised.value.code is None


async def test_a_slow_provider_times_out_as_retryable(
    channel: AliyunSmsChannel, fake: FakeDysmsapi, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    fake.delay = 1

    with pytest.raises(RetryableError, match="Timeout"):
        await channel.send(sms_message(), settings(base_url, timeout=0.2))


# --- the signer: documentation example and the official SDK -------------------------------------------


def test_acs3_sign_reproduces_the_documented_example() -> None:
    # Alibaba Cloud, "V3 版本请求体&签名机制" / "Request syntax and signature method V3", section
    # "签名示例" (https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature):
    # RunInstances on ecs.cn-shanghai with these fixed values prints the canonical request hash
    # 7ea06492… and the signature 06563a9e….
    headers = acs3_sign(
        "POST",
        "/",
        {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"},
        {"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances", "x-acs-version": "2014-05-26"},
        b"",
        "YourAccessKeyId",
        "YourAccessKeySecret",
        now=datetime(2023, 10, 26, 10, 22, 32, tzinfo=UTC),
        nonce="3156853299f313e23d1673dc12e1703d",
    )

    assert headers["x-acs-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert headers["x-acs-date"] == "2023-10-26T10:22:32Z"
    assert headers["authorization"] == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


@pytest.mark.parametrize(
    ("query", "body", "extra"),
    [
        (
            {
                "PhoneNumbers": "13800000000",
                "SignName": "阿里云短信测试",
                "TemplateCode": "SMS_154950909",
                "TemplateParam": '{"code":"1234","note":"a b*c~d/e+f&g=h"}',
            },
            b"",
            {},
        ),
        (
            {"Empty": "", "Z": "1", "a": "2"},
            b"PhoneNumbers=13800000000",
            {"content-type": "application/x-www-form-urlencoded"},
        ),
    ],
)
def test_acs3_sign_equals_the_official_sdk_signer(query: dict[str, str], body: bytes, extra: dict[str, str]) -> None:
    sdk_util = pytest.importorskip("alibabacloud_openapi_util.client").Client
    now, nonce = datetime(2024, 5, 1, 8, 30, 0, tzinfo=UTC), "0123456789abcdef0123456789abcdef"
    base = {"host": "dysmsapi.aliyuncs.com", "x-acs-action": "SendSms", "x-acs-version": "2017-05-25", **extra}

    ours = acs3_sign("POST", "/", query, base, body, KEY_ID, KEY_SECRET, now=now, nonce=nonce)

    payload_hash = hashlib.sha256(body).hexdigest()
    sdk_headers = {
        **base,
        "x-acs-date": "2024-05-01T08:30:00Z",
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": payload_hash,
    }
    request = SimpleNamespace(method="POST", pathname="/", query=query, headers=sdk_headers)
    sdk = sdk_util.get_authorization(request, "ACS3-HMAC-SHA256", payload_hash, KEY_ID, KEY_SECRET)
    assert ours["authorization"] == sdk


def test_the_official_sdk_client_is_accepted_by_the_fake_and_signs_like_herald(
    fake: FakeDysmsapi, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's whole V3 request path (``OpenApiClient.call_api``) against the same fake.

    This checks the fake's verifier against the SDK, and Herald's signer against the SDK on the
    exact request the SDK sent (its time, nonce and signed headers).
    """
    openapi = pytest.importorskip("alibabacloud_tea_openapi.client")
    from alibabacloud_tea_openapi import models as openapi_models
    from alibabacloud_tea_openapi import utils_models
    from alibabacloud_tea_openapi.utils import Utils
    from darabonba.runtime import RuntimeOptions

    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "fedcba9876543210fedcba9876543210"))
    config = openapi_models.Config(
        access_key_id=KEY_ID,
        access_key_secret=KEY_SECRET,
        endpoint=base_url.removeprefix("http://"),
        protocol="http",
    )
    client = openapi.Client(config)
    params = utils_models.Params(
        action="SendSms",
        version="2017-05-25",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    query = {
        "PhoneNumbers": "13800000000",
        "SignName": SIGN_NAME,
        "TemplateCode": "SMS_154950909",
        "TemplateParam": json.dumps(CONTENT["params"], ensure_ascii=False),
        "OutId": "dlv_sdk",
    }
    answer = client.call_api(params, utils_models.OpenApiRequest(query=query), RuntimeOptions(autoretry=False))

    assert answer["body"]["Code"] == "OK"
    [sent] = fake.requests
    assert sent.problem is None
    assert sent.query == query
    assert sent.headers["x-acs-signature-nonce"] == "fedcba9876543210fedcba9876543210"
    signed = re.search(r"SignedHeaders=([^,]+)", sent.headers["authorization"])
    assert signed is not None
    names = signed.group(1).split(";")
    generated = {"x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
    ours = acs3_sign(
        "POST",
        "/",
        sent.query,
        {n: sent.headers[n] for n in names if n not in generated},
        sent.body,
        KEY_ID,
        KEY_SECRET,
        now=datetime.strptime(sent.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        nonce=sent.headers["x-acs-signature-nonce"],
    )
    assert ours["authorization"] == sent.headers["authorization"]


# --- settings ------------------------------------------------------------------------------------------


def test_settings_defaults_and_secret_masking() -> None:
    parsed = AliyunSmsSettings.model_validate(
        {"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET, "sign_name": SIGN_NAME}
    )

    assert (parsed.region, parsed.base_url, parsed.timeout, parsed.weight) == (
        "cn-hangzhou",
        "https://dysmsapi.aliyuncs.com",
        10,
        1,
    )
    assert KEY_SECRET not in parsed.model_dump_json()
    assert AliyunSmsSettings.secret_fields() == ["access_key_secret"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "ftp://dysmsapi.aliyuncs.com"},
        {"base_url": "dysmsapi.aliyuncs.com"},
        {"access_key_secret": ""},
        {"sign_name": ""},
        {"weight": -1},
        {"timeout": 0},
        {"unknown": 1},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**{"base_url": "https://dysmsapi.aliyuncs.com", **overrides})


def test_template_model() -> None:
    assert AliyunSmsTemplate.model_validate(CONTENT).params == CONTENT["params"]
    with pytest.raises(ValidationError):
        AliyunSmsTemplate.model_validate({"template_code": "SMS_1", "extra": 1})
