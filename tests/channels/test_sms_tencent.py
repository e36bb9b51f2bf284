"""TencentSmsChannel against a fake SMS API (uvicorn on loopback) that verifies TC3 signatures itself.

The fake recomputes every signature from Tencent Cloud's "签名方法 v3" page, written out here and never
calling herald's ``tc3_authorization``; the signer is also pinned to the page's worked examples and
compared with the official SDK (``tencentcloud-sdk-python-common``) on a request the SDK really sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.sms_tencent import (
    TencentSmsChannel,
    TencentSmsSettings,
    TencentSmsTemplate,
    tc3_authorization,
)
from herald.core.errors import RetryableError, SkipDelivery, TerminalError
from tests.support import serve_asgi

SECRET_ID = "AKIDheraldTestSecretId0000000000000"
SECRET_KEY = "herald-test-secret-key-0000000000"
APP_ID = "1400006666"
SIGN_NAME = "赫拉德通知"
CONTENT = {"template_id": "449739", "params": ["123456", "5"]}


# --- the provider's side, from the 签名方法 v3 documentation --------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def verify_tc3(method: str, headers: dict[str, str], body: bytes) -> str | None:
    """``None`` when the request is correctly signed with SECRET_KEY, else a Tencent error code."""
    match = re.fullmatch(
        r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        headers.get("authorization", ""),
    )
    if not match:
        return "AuthFailure.InvalidAuthorization"
    secret_id, date, service, signed, signature = match.groups()
    if secret_id != SECRET_ID:
        return "AuthFailure.SecretIdNotFound"
    timestamp = int(headers.get("x-tc-timestamp", "0"))
    if abs(time.time() - timestamp) > 300:
        return "AuthFailure.SignatureExpire"
    if date != datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") or service != "sms":
        return "AuthFailure.SignatureFailure"
    names = signed.split(";")
    if not {"content-type", "host"} <= set(names):
        return "AuthFailure.SignatureFailure"
    canonical_headers = "".join(f"{n}:{headers[n].strip().lower()}\n" for n in names)
    canonical_request = "\n".join([method, "/", "", canonical_headers, signed, hashlib.sha256(body).hexdigest()])
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    secret_signing = _hmac(_hmac(_hmac(("TC3" + SECRET_KEY).encode("utf-8"), date), service), "tc3_request")
    expected = hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "AuthFailure.SignatureFailure"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    problem: str | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeTencentSms:
    """Answers like sms.tencentcloudapi.com: HTTP 200 with ``Response.Error`` or a ``SendStatusSet``."""

    status: int = 200
    error: str | None = None
    send_code: str = "Ok"
    raw: bytes | None = None
    delay: float = 0
    requests: list[Request] = field(default_factory=list)

    def reset(self) -> None:
        self.status, self.error, self.send_code, self.raw, self.delay = 200, None, "Ok", None, 0
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
        problem = verify_tc3(scope["method"], headers, body)
        if not problem and (headers.get("x-tc-action"), headers.get("x-tc-version")) != ("SendSms", "2021-01-11"):
            problem = "InvalidAction"
        self.requests.append(Request(scope["method"], scope["path"], headers, body, problem))
        await asyncio.sleep(self.delay)
        answer: dict[str, Any] = {"RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}
        error = problem or self.error
        if error:
            answer["Error"] = {"Code": error, "Message": "说明 " + error}
        else:
            sent = json.loads(body)
            answer["SendStatusSet"] = [
                {
                    "SerialNo": "5000:1045710669157053657849499619",
                    "PhoneNumber": sent["PhoneNumberSet"][0],
                    "Fee": 1,
                    "SessionContext": sent.get("SessionContext", ""),
                    "Code": self.send_code,
                    "Message": "send success" if self.send_code == "Ok" else "说明 " + self.send_code,
                    "IsoCode": "CN",
                }
            ]
        data = self.raw if self.raw is not None else json.dumps({"Response": answer}).encode()
        await send(
            {"type": "http.response.start", "status": self.status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": data})


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_server(port_factory: Callable[[], int]) -> Iterator[tuple[FakeTencentSms, str]]:
    fake = FakeTencentSms()
    with serve_asgi(fake, port_factory()) as base:
        yield fake, base


@pytest.fixture
def fake(fake_server: tuple[FakeTencentSms, str]) -> FakeTencentSms:
    fake_server[0].reset()
    return fake_server[0]


@pytest.fixture
def base_url(fake_server: tuple[FakeTencentSms, str]) -> str:
    return fake_server[1]


@pytest.fixture
async def channel() -> AsyncIterator[TencentSmsChannel]:
    chan = TencentSmsChannel()
    yield chan
    await chan.aclose()


@pytest.fixture
def sms_message(make_message: Callable[..., OutboundMessage]) -> Callable[..., OutboundMessage]:
    def make(**overrides: Any) -> OutboundMessage:
        return make_message(**{"content": CONTENT, **overrides})

    return make


def settings(**overrides: Any) -> TencentSmsSettings:
    fields = {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "sdk_app_id": APP_ID, "sign_name": SIGN_NAME}
    return TencentSmsSettings.model_validate({**fields, **overrides})


# --- end to end ----------------------------------------------------------------------------------------


def test_registered_with_its_template_model() -> None:
    assert CHANNELS["sms_tencent"] is TencentSmsChannel
    assert TencentSmsChannel.Template is TencentSmsTemplate


async def test_sends_a_signed_sendsms_request(
    channel: TencentSmsChannel, fake: FakeTencentSms, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    message = sms_message()
    before = int(time.time())

    result = await channel.send(message, settings(base_url=base_url, region="ap-beijing"))

    assert result.provider_message_id == "5000:1045710669157053657849499619"
    [request] = fake.requests
    assert request.problem is None
    assert (request.method, request.path) == ("POST", "/")
    assert request.json() == {
        "PhoneNumberSet": ["+8613800000000"],
        "SmsSdkAppId": APP_ID,
        "SignName": SIGN_NAME,
        "TemplateId": "449739",
        "TemplateParamSet": ["123456", "5"],
        "SessionContext": message.delivery_id,
    }
    assert SIGN_NAME.encode() in request.body  # UTF-8, not \\u-escaped
    headers = request.headers
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["host"] == base_url.removeprefix("http://")
    assert (headers["x-tc-action"], headers["x-tc-version"], headers["x-tc-region"]) == (
        "SendSms",
        "2021-01-11",
        "ap-beijing",
    )
    assert before <= int(headers["x-tc-timestamp"]) <= int(time.time())
    date = datetime.fromtimestamp(int(headers["x-tc-timestamp"]), UTC).strftime("%Y-%m-%d")
    assert headers["authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/sms/tc3_request, SignedHeaders=content-type;host, Signature="
    )


@pytest.mark.parametrize(
    ("phone", "sent"),
    [
        ("+8613800000000", "+8613800000000"),
        ("13800000000", "+8613800000000"),
        ("138 0000 0000", "+8613800000000"),
        ("0085291234567", "+85291234567"),
        ("+1 (415) 555-0100", "+14155550100"),
    ],
)
async def test_phone_numbers_in_e164(
    channel: TencentSmsChannel,
    fake: FakeTencentSms,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    phone: str,
    sent: str,
) -> None:
    await channel.send(sms_message(recipient=Recipient(id="u2", phone=phone)), settings(base_url=base_url))

    assert fake.requests[0].json()["PhoneNumberSet"] == [sent]


@pytest.mark.parametrize("phone", ["12345", "call me", "+86abc"])
async def test_a_phone_that_is_not_e164_is_terminal(
    channel: TencentSmsChannel,
    fake: FakeTencentSms,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    phone: str,
) -> None:
    with pytest.raises(TerminalError, match=r"E\.164"):
        await channel.send(sms_message(recipient=Recipient(id="u2", phone=phone)), settings(base_url=base_url))

    assert fake.requests == []


async def test_no_phone_is_skipped_without_a_request(
    channel: TencentSmsChannel, fake: FakeTencentSms, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(SkipDelivery, match="no phone number"):
        await channel.send(sms_message(recipient=Recipient(id="u3")), settings(base_url=base_url))

    assert fake.requests == []


@pytest.mark.parametrize("content", [{}, {"template_id": "1", "params": {"a": "b"}}, {"template_id": "1", "x": 1}])
async def test_a_broken_template_is_terminal(
    channel: TencentSmsChannel, base_url: str, sms_message: Callable[..., OutboundMessage], content: dict[str, Any]
) -> None:
    with pytest.raises(TerminalError, match="template"):
        await channel.send(sms_message(content=content), settings(base_url=base_url))


async def test_a_wrong_secret_key_is_refused_by_the_fake_and_terminal(
    channel: TencentSmsChannel, fake: FakeTencentSms, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError) as raised:
        await channel.send(sms_message(), settings(base_url=base_url, secret_key="not-the-key"))

    assert raised.value.code == "AuthFailure.SignatureFailure"
    assert fake.requests[0].problem == "AuthFailure.SignatureFailure"


# --- error matrix --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "code", "expected", "retry_after"),
    [
        ("error", "RequestLimitExceeded", RetryableError, None),
        ("error", "InternalError.Timeout", RetryableError, None),
        ("error", "InternalError.RequestTimeException", RetryableError, None),
        ("error", "LimitExceeded.AppDailyLimit", RetryableError, None),
        ("error", "AuthFailure.SecretIdNotFound", TerminalError, None),
        ("error", "UnauthorizedOperation.SmsSdkAppIdVerifyFail", TerminalError, None),
        ("error", "FailedOperation.TemplateIncorrectOrUnapproved", TerminalError, None),
        ("error", "FailedOperation.SignatureIncorrectOrUnapproved", TerminalError, None),
        ("error", "InvalidParameterValue.IncorrectPhoneNumber", TerminalError, None),
        ("error", "FailedOperation.InsufficientBalanceInSmsPackage", TerminalError, None),
        ("error", "SomethingNew.NeverSeen", TerminalError, None),
        ("status", "LimitExceeded.PhoneNumberThirtySecondLimit", RetryableError, 30),
        ("status", "LimitExceeded.PhoneNumberOneHourLimit", RetryableError, 3600),
        ("status", "LimitExceeded.PhoneNumberDailyLimit", RetryableError, 3600),
        ("status", "InternalError.SendAndRecvFail", RetryableError, None),
        ("status", "InvalidParameterValue.IncorrectPhoneNumber", TerminalError, None),
        ("status", "FailedOperation.PhoneNumberInBlacklist", TerminalError, None),
        ("status", "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", TerminalError, None),
        ("status", "UnauthorizedOperation.SerivceSuspendDueToArrears", TerminalError, None),
    ],
)
async def test_error_codes_are_classified(
    channel: TencentSmsChannel,
    fake: FakeTencentSms,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    where: str,
    code: str,
    expected: type[Exception],
    retry_after: float | None,
) -> None:
    if where == "error":
        fake.error = code
    else:
        fake.send_code = code  # HTTP 200, the request accepted, this number refused

    with pytest.raises(expected) as raised:
        await channel.send(sms_message(), settings(base_url=base_url))

    error = raised.value
    assert type(error) is expected
    assert error.code == code  # type: ignore[attr-defined]
    assert code in error.message and "说明" in error.message  # type: ignore[attr-defined]
    if isinstance(error, RetryableError):
        assert error.retry_after == retry_after


@pytest.mark.parametrize(("status", "expected"), [(500, RetryableError), (502, RetryableError), (404, TerminalError)])
async def test_non_json_answers_are_classified_by_status(
    channel: TencentSmsChannel,
    fake: FakeTencentSms,
    base_url: str,
    sms_message: Callable[..., OutboundMessage],
    status: int,
    expected: type[Exception],
) -> None:
    fake.status, fake.raw = status, b"<html>oops</html>"

    with pytest.raises(expected) as raised:
        await channel.send(sms_message(), settings(base_url=base_url))

    assert raised.value.code == str(status)  # type: ignore[attr-defined]


async def test_an_answer_without_a_send_status_is_terminal(
    channel: TencentSmsChannel, fake: FakeTencentSms, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    fake.raw = b'{"Response": {"SendStatusSet": [], "RequestId": "r"}}'

    with pytest.raises(TerminalError, match="without a send status"):
        await channel.send(sms_message(), settings(base_url=base_url))


async def test_nothing_listening_is_retryable(
    channel: TencentSmsChannel, port_factory: Callable[[], int], sms_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError) as raised:
        await channel.send(sms_message(), settings(base_url=f"http://127.0.0.1:{port_factory()}"))

    assert raised.value.code is None


async def test_a_slow_provider_times_out_as_retryable(
    channel: TencentSmsChannel, fake: FakeTencentSms, base_url: str, sms_message: Callable[..., OutboundMessage]
) -> None:
    fake.delay = 1

    with pytest.raises(RetryableError, match="Timeout"):
        await channel.send(sms_message(), settings(base_url=base_url, timeout=0.2))


# --- the signer: documentation examples and the official SDK ------------------------------------------


def test_tc3_reproduces_the_documented_post_example() -> None:
    # Tencent Cloud API 3.0, "签名方法 v3" (e.g. https://cloud.tencent.com/document/api/382/52072 for
    # SMS): DescribeInstances on cvm with SecretId AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE, SecretKey
    # Gu5t9xGARNpq86cd98joQYCN3EXAMPLE, X-TC-Timestamp 1551113065, this exact JSON body, printed
    # Signature=72e494ea….
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'

    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        host="cvm.tencentcloudapi.com",
        payload=payload,
        timestamp=1551113065,
        service="cvm",
        content_type="application/json; charset=utf-8",
    )

    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_tc3_reproduces_the_documented_get_example() -> None:
    # The older edition of the same page (https://intl.cloud.tencent.com/document/api/1021/34193 and
    # its translations): GET ?Limit=10&Offset=0 at X-TC-Timestamp 1539084154, Signature=5da7a33f….
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        host="cvm.tencentcloudapi.com",
        payload=b"",
        timestamp=1539084154,
        service="cvm",
        content_type="application/x-www-form-urlencoded",
        method="GET",
        canonical_query="Limit=10&Offset=0",
    )

    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2018-10-09/cvm/tc3_request, "
        "SignedHeaders=content-type;host, Signature=5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
    )


def test_the_official_sdk_signs_like_herald_and_is_accepted_by_the_fake(
    fake: FakeTencentSms, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own request path (``CommonClient.call_json``) against the same fake, clock fixed."""
    pytest.importorskip("tencentcloud.common.common_client")
    from tencentcloud.common import abstract_client, credential
    from tencentcloud.common.common_client import CommonClient
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    fixed = int(time.time()) - 7
    monkeypatch.setattr(abstract_client, "time", _FrozenTime(fixed))
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=base_url.removeprefix("http://")))
    client = CommonClient("sms", "2021-01-11", credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou", profile)
    params = {
        "PhoneNumberSet": ["+8613800000000"],
        "SmsSdkAppId": APP_ID,
        "SignName": SIGN_NAME,
        "TemplateId": "449739",
        "TemplateParamSet": ["123456", "5"],
        "SessionContext": "dlv_sdk",
    }

    answer = client.call_json("SendSms", params)

    assert answer["Response"]["SendStatusSet"][0]["Code"] == "Ok"
    [sent] = fake.requests
    assert sent.problem is None
    assert sent.json() == params
    assert sent.headers["x-tc-timestamp"] == str(fixed)
    ours = tc3_authorization(
        SECRET_ID,
        SECRET_KEY,
        host=sent.headers["host"],
        payload=sent.body,
        timestamp=fixed,
        content_type=sent.headers["content-type"],
    )
    assert ours == sent.headers["authorization"]


class _FrozenTime:
    """Stands in for the ``time`` module inside the SDK's client: a fixed ``time()``, the rest real."""

    def __init__(self, now: int) -> None:
        self._now = now

    def time(self) -> float:
        return float(self._now)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


# --- settings ------------------------------------------------------------------------------------------


def test_settings_defaults_and_secret_masking() -> None:
    parsed = settings()

    assert (parsed.region, parsed.base_url, parsed.timeout, parsed.weight) == (
        "ap-guangzhou",
        "https://sms.tencentcloudapi.com",
        10,
        1,
    )
    assert SECRET_KEY not in parsed.model_dump_json()
    assert TencentSmsSettings.secret_fields() == ["secret_key"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "sms.tencentcloudapi.com"},
        {"secret_key": ""},
        {"sdk_app_id": ""},
        {"weight": -1},
        {"timeout": 0},
        {"unknown": 1},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**overrides)


def test_template_model() -> None:
    assert TencentSmsTemplate.model_validate(CONTENT).params == ["123456", "5"]
    with pytest.raises(ValidationError):
        TencentSmsTemplate.model_validate({"template_id": "1", "params": "not a list"})
