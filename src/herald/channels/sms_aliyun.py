"""Aliyun SMS (阿里云短信服务): ``SendSms`` 2017-05-25, signed with ACS3-HMAC-SHA256 (V3 signature).

The request follows Alibaba Cloud's "V3 版本请求体&签名机制": an RPC-style ``POST /`` whose parameters
are in the query string (where the API metadata puts them, as the official SDK sends them), with
``x-acs-action``, ``x-acs-version``, ``x-acs-date``, ``x-acs-signature-nonce`` and
``x-acs-content-sha256`` headers and an ``Authorization: ACS3-HMAC-SHA256 Credential=…,
SignedHeaders=…,Signature=…`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from herald.channels._http import HttpChannel, encode_json_body, http_base_url
from herald.channels.base import ChannelSettings, OutboundMessage, Receipt, Recipient, SendResult
from herald.core.errors import RetryableError, SkipDelivery, TerminalError

if TYPE_CHECKING:
    import httpx

ACTION = "SendSms"
API_VERSION = "2017-05-25"
ALGORITHM = "ACS3-HMAC-SHA256"
USER_AGENT = "Herald-SMS/0.1"
# isv.BUSINESS_LIMIT_CONTROL / isv.DAY_LIMIT_CONTROL are the per-number flow controls (1/min, 5/h,
# 10/day for codes by default): sending again soon only fails again, so the retry waits an hour.
DEFERRED_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL"})
DEFER_SECONDS = 3600.0
RETRYABLE_CODES = frozenset({"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError", "UnknownError"})
RETRYABLE_PREFIXES = ("Throttling", "isp.")
TERMINAL_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
    }
)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the V3 doc asks: unreserved ``A-Za-z0-9-_.~`` kept, space as ``%20``."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query_string(query: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(query.items()))


def acs3_sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
    *,
    now: datetime,
    nonce: str,
) -> dict[str, str]:
    """Sign one request; return the headers to send (lower-case names).

    ``headers`` are the headers to sign: ``host``, ``x-acs-action``, ``x-acs-version`` and
    ``content-type`` when there is a body. This adds ``x-acs-date`` (from ``now``),
    ``x-acs-signature-nonce``, ``x-acs-content-sha256`` and ``authorization``; every header it
    returns except ``authorization`` is signed.
    """
    signed = {name.lower(): value.strip() for name, value in headers.items()}
    payload_hash = hashlib.sha256(body).hexdigest()
    signed["x-acs-date"] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signed["x-acs-signature-nonce"] = nonce
    signed["x-acs-content-sha256"] = payload_hash
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [method.upper(), path or "/", canonical_query_string(query), canonical_headers, signed_headers, payload_hash]
    )
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    signature = hmac.new(access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
    return signed


class AliyunSmsSettings(ChannelSettings):
    access_key_id: str = Field(min_length=1, description="AccessKey ID of a RAM user allowed to call dysms:SendSms.")
    access_key_secret: SecretStr = Field(description="AccessKey secret; write-only.")
    sign_name: str = Field(min_length=1, description="Approved SMS signature (签名), e.g. 阿里云短信测试.")
    region: str = Field("cn-hangzhou", min_length=1, description="The account's region; the endpoint is base_url.")
    base_url: str = Field("https://dysmsapi.aliyuncs.com", description="API endpoint (scheme and host).")
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for the whole request.")
    weight: int = Field(default=1, ge=0, description="Share of SMS traffic among SMS accounts; 0 = failover only.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("access_key_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("access_key_secret must not be empty")
        return value


class AliyunSmsTemplate(BaseModel):
    """A notification type's ``sms_aliyun`` template: the approved template and its variables."""

    model_config = ConfigDict(extra="forbid")

    template_code: str = Field(min_length=1, description="Approved template code (模板CODE), e.g. SMS_154950909.")
    params: dict[str, str] = Field(
        default_factory=dict,
        description='Template variables, each a ${var} template: {"code": "${code}"}. Sent as TemplateParam JSON.',
    )


class AliyunSmsChannel(HttpChannel):
    name = "sms_aliyun"
    routes_for = "sms"
    title = "Aliyun SMS / 阿里云短信"
    Settings = AliyunSmsSettings
    Template = AliyunSmsTemplate

    # Status reports are posted to POST /v1/callbacks/{channel}/{account}?token=...; this is the
    # answer the provider expects back.
    receipt_ack: ClassVar[dict[str, Any] | None] = {"code": 0, "msg": "成功"}

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        return _parse_aliyun_reports(body)

    def missing_address(self, recipient: Recipient) -> str | None:
        return None if recipient.phone else "no phone number"

    async def send(self, message: OutboundMessage, settings: AliyunSmsSettings) -> SendResult:
        import httpx  # on first send (channels/_http.py)

        if not message.recipient.phone:
            raise SkipDelivery("no phone number")
        template = parse_template(message.content)
        query = build_query(message, settings, template)
        host = urlsplit(settings.base_url).netloc
        headers = acs3_sign(
            "POST",
            "/",
            query,
            {"host": host, "x-acs-action": ACTION, "x-acs-version": API_VERSION},
            b"",
            settings.access_key_id,
            settings.access_key_secret.get_secret_value(),
            now=datetime.now(UTC),
            nonce=secrets.token_hex(16),
        )
        headers["user-agent"] = USER_AGENT
        headers["accept"] = "application/json"
        # The query is sent exactly as it was signed.
        url = f"{settings.base_url}/?{canonical_query_string(query)}"
        try:
            response = await self._http().post(url, headers=headers, timeout=settings.timeout)
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        return classify_response(response)


def parse_template(content: Mapping[str, Any]) -> AliyunSmsTemplate:
    try:
        return AliyunSmsTemplate.model_validate(content)
    except ValidationError as exc:
        raise TerminalError(f"sms_aliyun template is invalid: {exc.errors()[0]['msg']}") from exc


def aliyun_phone_number(phone: str) -> str:
    """Aliyun's ``PhoneNumbers`` form: 11 digits for the mainland, country code + number elsewhere."""
    number = "".join(c for c in phone if c not in " -()")
    if number.startswith("+"):
        number = number[1:]
    elif number.startswith("00"):
        number = number[2:]
    if not number.isdigit():
        raise TerminalError(f"phone number {phone!r} is not a number")
    if number.startswith("86") and len(number) == 13:
        number = number[2:]
    return number


def build_query(message: OutboundMessage, settings: AliyunSmsSettings, template: AliyunSmsTemplate) -> dict[str, str]:
    query = {
        "PhoneNumbers": aliyun_phone_number(message.recipient.phone or ""),
        "SignName": settings.sign_name,
        "TemplateCode": template.template_code,
        # OutId comes back in the status report, matching it to the delivery.
        "OutId": message.delivery_id,
    }
    if template.params:
        # encoded once to find what cannot be UTF-8 (terminal), before signing percent-encodes it
        query["TemplateParam"] = encode_json_body(template.params, separators=(",", ":")).decode()
    return query


def classify_code(code: str, message: str) -> RetryableError | TerminalError:
    text = f"{code}: {message}" if message else code
    if code in DEFERRED_CODES:
        return RetryableError(f"deferred: {text}", code=code, retry_after=DEFER_SECONDS)
    if code in RETRYABLE_CODES or code.startswith(RETRYABLE_PREFIXES):
        return RetryableError(text, code=code)
    # TERMINAL_CODES are listed for the docs and tests; any other business code is terminal too,
    # since retrying an unrecognised refusal would only repeat it.
    return TerminalError(text, code=code)


def classify_response(response: httpx.Response) -> SendResult:
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not payload.get("Code"):
        if status >= 500 or status == 429:
            raise RetryableError(f"Aliyun answered HTTP {status}", code=str(status))
        raise TerminalError(f"Aliyun answered HTTP {status}: {response.text[:200]}", code=str(status))
    code, text = str(payload["Code"]), str(payload.get("Message") or "")
    if code == "OK" and status < 300:
        return SendResult(provider_message_id=payload.get("BizId"), detail=f"RequestId {payload.get('RequestId')}")
    if status >= 500 and code not in TERMINAL_CODES:
        raise RetryableError(f"{code}: {text}", code=code)
    raise classify_code(code, text)


def _parse_aliyun_reports(body: bytes) -> list[Receipt]:
    """Aliyun's SmsReport push: a JSON list of {phone_number, success, err_code, err_msg, biz_id, out_id, ...}."""
    reports = json.loads(body)
    if not isinstance(reports, list):
        raise ValueError("an SMS status report is a JSON list")
    out = []
    for r in reports:
        if not isinstance(r, dict):
            raise ValueError("each SMS status report is a JSON object")
        out.append(
            Receipt(
                delivered=bool(r.get("success")),
                delivery_id=r.get("out_id") or None,
                provider_message_id=r.get("biz_id") or None,
                code=r.get("err_code"),
                message=r.get("err_msg"),
            )
        )
    return out
