"""Tencent Cloud SMS (腾讯云短信): ``SendSms`` 2021-01-11, signed with TC3-HMAC-SHA256 (签名方法 v3).

One JSON ``POST /`` per message with the ``X-TC-Action``, ``X-TC-Version``, ``X-TC-Timestamp`` and
``X-TC-Region`` headers and ``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/sms/
tc3_request, SignedHeaders=content-type;host, Signature=…``. Tencent answers HTTP 200 for API errors
(``Response.Error``) and for per-number failures (``SendStatusSet[].Code`` other than ``Ok``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from herald.channels._http import HttpChannel, encode_json_body, http_base_url
from herald.channels.base import ChannelSettings, OutboundMessage, Receipt, Recipient, SendResult
from herald.core.errors import RetryableError, SkipDelivery, TerminalError

if TYPE_CHECKING:
    import httpx

SERVICE = "sms"
ACTION = "SendSms"
API_VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
USER_AGENT = "Herald-SMS/0.1"
RETRYABLE_CODES = frozenset({"RequestLimitExceeded", "InternalError", "ResourceUnavailable"})
RETRYABLE_PREFIXES = ("LimitExceeded.", "InternalError.", "RequestLimitExceeded.")
# Per-number frequency limits: retrying before the window passes only fails again.
RETRY_AFTER = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600.0,
    "LimitExceeded.DailyLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 3600.0,
}


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
    method: str = "POST",
    canonical_query: str = "",
) -> str:
    """The ``Authorization`` header for one request signed at ``timestamp`` (seconds, UTC).

    Signs ``content-type`` and ``host``, as Tencent's SDKs do; the date in the credential scope is
    the UTC date of ``timestamp``, so a request signed just before midnight keeps that day.
    """
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signed_headers = "content-type;host"
    canonical_headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    canonical_request = "\n".join(
        [method.upper(), "/", canonical_query, canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"TC3{secret_key}".encode(), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class TencentSmsSettings(ChannelSettings):
    secret_id: str = Field(min_length=1, description="SecretId of a CAM user allowed to call sms:SendSms.")
    secret_key: SecretStr = Field(description="SecretKey; write-only.")
    sdk_app_id: str = Field(min_length=1, description="SMS application SdkAppId, e.g. 1400006666.")
    sign_name: str = Field(min_length=1, description="Approved SMS signature (签名内容), e.g. 腾讯云.")
    region: str = Field("ap-guangzhou", min_length=1, description="X-TC-Region: ap-guangzhou, ap-beijing, ap-nanjing.")
    base_url: str = Field("https://sms.tencentcloudapi.com", description="API endpoint (scheme and host).")
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for the whole request.")
    weight: int = Field(default=1, ge=0, description="Share of SMS traffic among SMS accounts; 0 = failover only.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("secret_key")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("secret_key must not be empty")
        return value


class TencentSmsTemplate(BaseModel):
    """A notification type's ``sms_tencent`` template: the approved template id and its positional values."""

    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, description="Approved template ID (模板 ID), e.g. 449739.")
    params: list[str] = Field(
        default_factory=list,
        description='Values for the template\'s {1}, {2}, … in order, each a ${var} template: ["${code}", "5"].',
    )


class TencentSmsChannel(HttpChannel):
    name = "sms_tencent"
    routes_for = "sms"
    title = "Tencent Cloud SMS / 腾讯云短信"
    Settings = TencentSmsSettings
    Template = TencentSmsTemplate

    # Status reports are posted to POST /v1/callbacks/{channel}/{account}?token=...; this is the
    # answer the provider expects back.
    receipt_ack: ClassVar[dict[str, Any] | None] = {"result": 0, "errmsg": "OK"}

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        return _parse_tencent_reports(body)

    def missing_address(self, recipient: Recipient) -> str | None:
        return None if recipient.phone else "no phone number"

    async def send(self, message: OutboundMessage, settings: TencentSmsSettings) -> SendResult:
        import httpx  # on first send (channels/_http.py)

        if not message.recipient.phone:
            raise SkipDelivery("no phone number")
        template = parse_template(message.content)
        body = encode_body(message, settings, template)
        timestamp = int(datetime.now(UTC).timestamp())
        headers = signed_headers(settings, body, timestamp)
        try:
            response = await self._http().post(
                f"{settings.base_url}/", content=body, headers=headers, timeout=settings.timeout
            )
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        return classify_response(response)


def parse_template(content: Mapping[str, Any]) -> TencentSmsTemplate:
    try:
        return TencentSmsTemplate.model_validate(content)
    except ValidationError as exc:
        raise TerminalError(f"sms_tencent template is invalid: {exc.errors()[0]['msg']}") from exc


def e164_phone_number(phone: str) -> str:
    """``+`` country code + number; a bare 11-digit mainland mobile (1xxxxxxxxxx) gets ``+86``."""
    number = "".join(c for c in phone if c not in " -()")
    if number.startswith("00"):
        number = "+" + number[2:]
    if number.startswith("+") and number[1:].isdigit() and len(number) > 4:
        return number
    if number.isdigit() and len(number) == 11 and number.startswith("1"):
        return "+86" + number
    raise TerminalError(f"phone number {phone!r} is not in E.164 form (+country code, number)")


def encode_body(message: OutboundMessage, settings: TencentSmsSettings, template: TencentSmsTemplate) -> bytes:
    body = {
        "PhoneNumberSet": [e164_phone_number(message.recipient.phone or "")],
        "SmsSdkAppId": settings.sdk_app_id,
        "SignName": settings.sign_name,
        "TemplateId": template.template_id,
        "TemplateParamSet": template.params,
        # Returned in the status report: it matches the report to the delivery.
        "SessionContext": message.delivery_id,
    }
    # The signature covers these exact bytes, so they are produced once and sent as-is.
    return encode_json_body(body, separators=(",", ":"))


def signed_headers(settings: TencentSmsSettings, body: bytes, timestamp: int) -> dict[str, str]:
    host = urlsplit(settings.base_url).netloc
    return {
        "host": host,
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "x-tc-action": ACTION,
        "x-tc-version": API_VERSION,
        "x-tc-timestamp": str(timestamp),
        "x-tc-region": settings.region,
        "authorization": tc3_authorization(
            settings.secret_id, settings.secret_key.get_secret_value(), host=host, payload=body, timestamp=timestamp
        ),
    }


def classify_code(code: str, message: str) -> RetryableError | TerminalError:
    text = f"{code}: {message}" if message else code
    if code in RETRYABLE_CODES or code.startswith(RETRYABLE_PREFIXES):
        return RetryableError(text, code=code, retry_after=RETRY_AFTER.get(code))
    # FailedOperation.*Template*, InvalidParameterValue.IncorrectPhoneNumber, UnauthorizedOperation.*,
    # AuthFailure.* and anything unrecognised: sending the same request again cannot succeed.
    return TerminalError(text, code=code)


def classify_response(response: httpx.Response) -> SendResult:
    status = response.status_code
    try:
        answer = response.json()["Response"]
    except (ValueError, KeyError, TypeError):
        answer = None
    if not isinstance(answer, dict):
        if status >= 500 or status == 429:
            raise RetryableError(f"Tencent answered HTTP {status}", code=str(status))
        raise TerminalError(f"Tencent answered HTTP {status}: {response.text[:200]}", code=str(status))
    request_id = answer.get("RequestId")
    error = answer.get("Error")
    if isinstance(error, dict):
        raise classify_code(str(error.get("Code") or "UnknownError"), str(error.get("Message") or ""))
    if status >= 300:
        raise (RetryableError if status >= 500 else TerminalError)(f"Tencent answered HTTP {status}", code=str(status))
    statuses = answer.get("SendStatusSet") or []
    if not statuses or not isinstance(statuses[0], dict):
        # Retrying an answer we cannot read could send the text twice.
        raise TerminalError(f"Tencent answered without a send status (RequestId {request_id})")
    sent = statuses[0]
    code = str(sent.get("Code") or "")
    if code != "Ok":
        raise classify_code(code or "UnknownError", str(sent.get("Message") or ""))
    return SendResult(provider_message_id=sent.get("SerialNo"), detail=f"RequestId {request_id}")


def _parse_tencent_reports(body: bytes) -> list[Receipt]:
    """Tencent's status callback: a JSON list of {mobile, report_status: SUCCESS|FAIL, errmsg,
    description, sid, ...}; ``sid`` is the SerialNo SendSms returned."""
    reports = json.loads(body)
    if not isinstance(reports, list):
        raise ValueError("an SMS status report is a JSON list")
    out = []
    for r in reports:
        if not isinstance(r, dict):
            raise ValueError("each SMS status report is a JSON object")
        out.append(
            Receipt(
                delivered=r.get("report_status") == "SUCCESS",
                delivery_id=r.get("session_context") or None,
                provider_message_id=r.get("sid") or None,
                code=r.get("errmsg"),
                message=r.get("description"),
            )
        )
    return out
