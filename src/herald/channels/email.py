"""Email over SMTP (邮件), sent with aiosmtplib: one connection per message, text + HTML alternative.

aiosmtplib and the stdlib's modern email API (``email.policy``, ``email.headerregistry``) are
imported on the first send, never at start (a server may have no email account).
"""

from __future__ import annotations

import html
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from pydantic import Field, SecretStr, field_validator, model_validator

from herald.channels._http import encode_utf8
from herald.channels.base import Channel, ChannelSettings, OutboundMessage, Recipient, SendResult
from herald.core.errors import DeliveryError, RetryableError, SkipDelivery, TerminalError

if TYPE_CHECKING:
    from email.policy import EmailPolicy, Policy


class EmailSettings(ChannelSettings):
    host: str = Field(min_length=1, description="SMTP server host name or IP address.")
    port: int = Field(587, ge=1, le=65535, description="587 for STARTTLS, 465 for implicit TLS, 25 plain.")
    username: str | None = Field(None, description="Login, when the server requires AUTH.")
    password: SecretStr | None = Field(None, description="Password or app token; write-only.")
    sender: str = Field(
        min_length=3,
        description='From address, optionally with a display name: "Herald 通知 <noreply@example.com>".',
    )
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS (required, not opportunistic).")
    ssl: bool = Field(False, description="Connect with implicit TLS (usually port 465).")
    timeout: float = Field(10, gt=0, le=300, description="Seconds allowed for each SMTP step.")

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, value: str) -> str:
        if _has_line_break(value):
            raise ValueError("sender must be one line (no CR or LF)")
        _, address = parseaddr(value)
        if "@" not in address:
            raise ValueError("sender must be an email address, optionally with a display name")
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailSettings:
        if self.ssl and self.starttls:
            raise ValueError("set either ssl (implicit TLS) or starttls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self

    @property
    def sender_address(self) -> str:
        """The bare address of ``sender``: the SMTP envelope sender and the Message-ID domain."""
        return parseaddr(self.sender)[1]


class EmailChannel(Channel):
    name = "email"
    title = "Email / 邮件"
    Settings = EmailSettings

    def missing_address(self, recipient: Recipient) -> str | None:
        return None if recipient.email else "no email address"

    async def send(self, message: OutboundMessage, settings: EmailSettings) -> SendResult:
        import aiosmtplib  # on the first send (see the module's docstring)

        if not message.recipient.email:
            raise SkipDelivery("no email address")
        address = deliverable_address(message.recipient.email)
        try:
            email = build_email(message, settings, address)
        except ValueError as exc:  # what build_email does not foresee; the same input fails every time
            raise TerminalError(f"email cannot be built: {exc}") from exc
        try:
            await aiosmtplib.send(
                email,
                sender=settings.sender_address,
                recipients=[address],
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                use_tls=settings.ssl,
                start_tls=settings.starttls,
                timeout=settings.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            raise classify_smtp_error(exc) from exc
        return SendResult(provider_message_id=email["Message-ID"])


def build_email(message: OutboundMessage, settings: EmailSettings, address: str) -> EmailMessage:
    """The MIME message: multipart/alternative, plain text first so clients prefer the HTML part.

    ``TerminalError`` when the rendered content cannot travel: a line break in a header value
    (header injection, which the stdlib refuses deep inside with a ValueError) or text with no
    UTF-8 form (a lone surrogate). Both would fail the same way on every retry.
    """
    content = message.content
    subject = _first_text(content, "subject", "title") or message.type
    text = _first_text(content, "body", "text", "summary")
    # ``html`` arrives autoescaped by the template renderer; only our own fallback needs escaping here.
    body_html = _first_text(content, "html") or _text_to_html(text, subject)
    headers = {
        "Subject": subject,
        "From": settings.sender,
        # the name is checked alone: formataddr would hide a non-ASCII one's line break in an encoded word
        "To": formataddr((_header_value("To", message.recipient.name or ""), address)),
        "Date": formatdate(usegmt=True),
        # Stable across retries: if a timeout hid an accepted message, mail systems can drop the copy.
        "Message-ID": f"<{message.delivery_id}@{settings.sender_address.rpartition('@')[2]}>",
        "X-Herald-Delivery-Id": message.delivery_id,
    }
    url = message.unsubscribe_url
    if url and url.isascii() and len(url) <= MAX_UNSUBSCRIBE_URL:
        # RFC 8058 one-click: the provider POSTs "List-Unsubscribe=One-Click" to it
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    email = EmailMessage(policy=_policy())
    for name, value in headers.items():
        email[name] = _header_value(name, value)
    email.set_content(_utf8_text("email text body", text))
    email.add_alternative(_utf8_text("email HTML body", body_html), subtype="html")
    return email


MAX_UNSUBSCRIBE_URL = 900
"""A longer link (ids of hundreds of characters) is left out: the header must fit one line (998)."""


@cache
def _policy() -> EmailPolicy[EmailMessage]:
    """The stdlib's default policy, except that ``List-Unsubscribe`` is written on one line as
    given: folded, or RFC 2047-encoded as the stdlib does to a long word, the URL would be no URL
    to a mail provider. Kept by each header object, so aiosmtplib's own SMTP policy honours it."""
    from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
    from email.policy import default

    class UnfoldedHeader(UnstructuredHeader):
        max_count = 1
        name: str  # BaseHeader's, which the registry mixes in

        def fold(self, *, policy: Policy) -> str:
            return f"{self.name}: {self}{policy.linesep}"

    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", cast("type[BaseHeader]", UnfoldedHeader))
    return default.clone(header_factory=registry)


def _header_value(name: str, value: str) -> str:
    if _has_line_break(value):
        raise TerminalError(
            f"email {name} contains a line break (CR or LF), which a header cannot carry: {value[:120]!r}"
        )
    return _utf8_text(f"email {name}", value)


def _utf8_text(what: str, value: str) -> str:
    encode_utf8(value, what)  # TerminalError naming the character
    return value


def _has_line_break(value: str) -> bool:
    # Every boundary str.splitlines knows (CR, LF, VT, FF, NEL, U+2028…): the email package refuses them all.
    return "".join(value.splitlines()) != value


def deliverable_address(address: str) -> str:
    """``address`` as SMTP and headers can carry it, or ``TerminalError``.

    Internationalized domains (``user@例子.中国``) become punycode so no SMTPUTF8 is needed; the
    stdlib cannot put a non-ASCII local part in a header, so those are refused up front.
    """
    from email.headerregistry import Address  # on the first send (see the module's docstring)

    try:
        parsed = Address(addr_spec=address)
        domain = parsed.domain if parsed.domain.isascii() else parsed.domain.encode("idna").decode()
    except (ValueError, IndexError) as exc:  # the parser raises either on garbage; so does the idna codec
        raise TerminalError(f"invalid email address: {address!r}") from exc
    if not parsed.username or not domain:
        raise TerminalError(f"invalid email address: {address!r}")
    return Address(username=parsed.username, domain=domain).addr_spec


def _first_text(content: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = content.get(key)
        if value:
            return str(value)
    return ""


def _text_to_html(text: str, title: str) -> str:
    body = html.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>{body}</body></html>\n"
    )


def classify_smtp_error(exc: BaseException) -> DeliveryError:
    """SMTP failures as delivery errors: 5xx replies and an account the server cannot serve never
    heal; network trouble and 4xx replies may."""
    import aiosmtplib  # loaded by the send that failed

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per message, so the first refusal is the one that matters.
        refused = exc.recipients[0] if exc.recipients else None
        if refused is not None:
            return _from_reply(refused.code, f"recipient refused: {refused.message}")
        return RetryableError(f"recipient refused: {exc}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # 535 wrong credentials, 534/538 a mechanism or TLS required: the account must change.
        # Only a 4xx (454 "temporary authentication failure") is worth another try.
        if 400 <= exc.code < 500:
            return RetryableError(f"authentication failed: {exc.message}", code=str(exc.code))
        return TerminalError(f"authentication failed: {exc.message}", code=str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _from_reply(exc.code, f"{type(exc).__name__}: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # The server lacks what the message needs (SMTPUTF8): a config problem.
        return TerminalError(f"server does not support it: {exc}")
    if type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib raises its bare base class when the server cannot do what the account asks
        # ("The SMTP AUTH extension is not supported by this server.", no STARTTLS, no auth
        # mechanism in common): the account or the server must change, retrying will not help.
        return TerminalError(f"SMTP server cannot serve this account: {exc.message}")
    certificate = exc if isinstance(exc, ssl.SSLCertVerificationError) else exc.__cause__
    if isinstance(certificate, ssl.SSLCertVerificationError):
        # Implicit TLS wraps it in SMTPConnectError, STARTTLS raises it as is.
        return TerminalError(
            f"SMTP server's TLS certificate is not trusted: {certificate.verify_message or certificate}"
        )
    if isinstance(exc, ValueError):
        return TerminalError(f"message cannot be sent: {exc}")
    return RetryableError(f"{type(exc).__name__}: {exc}")


def _from_reply(code: int, text: str) -> DeliveryError:
    if 500 <= code < 600:
        return TerminalError(text, code=str(code))
    return RetryableError(text, code=str(code) if code > 0 else None)
