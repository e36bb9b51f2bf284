"""EmailChannel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.email import EmailChannel, EmailSettings, classify_smtp_error
from herald.core.errors import RetryableError, SkipDelivery, TerminalError

SENDER = "Herald 通知 <noreply@example.com>"
# Loopback test servers run without TLS on purpose; aiosmtpd warns about AUTH over plain text.
plain_auth_ok = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what arrives, or refuses recipients/data with a set reply."""

    envelopes: list[Envelope] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def only_message(self) -> EmailMessage:
        assert len(self.envelopes) == 1
        content = self.envelopes[0].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _lf(text: str) -> str:
    """Content as written: SMTP carries CRLF line endings, the parser keeps them."""
    return text.replace("\r\n", "\n")


def _accept_herald_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"herald", b"s3cret")
    # handled=False makes aiosmtpd send the 535 itself; its default (True) sends nothing.
    return AuthResult(success=ok, handled=False)


def _start(mailbox: Mailbox, port: int, **kwargs: Any) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox, port_factory: Callable[[], int]) -> Iterator[int]:
    port = port_factory()
    controller = _start(mailbox, port)
    yield port
    controller.stop()


@pytest.fixture
def auth_smtp_port(mailbox: Mailbox, port_factory: Callable[[], int]) -> Iterator[int]:
    port = port_factory()
    controller = _start(mailbox, port, authenticator=_accept_herald_login, auth_required=True, auth_require_tls=False)
    yield port
    controller.stop()


@pytest.fixture
def temporary_auth_failure_port(mailbox: Mailbox, port_factory: Callable[[], int]) -> Iterator[int]:
    def refuse_for_now(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, message="454 4.7.0 Temporary authentication failure")

    port = port_factory()
    controller = _start(mailbox, port, authenticator=refuse_for_now, auth_required=True, auth_require_tls=False)
    yield port
    controller.stop()


@pytest.fixture
async def channel() -> AsyncIterator[EmailChannel]:
    chan = EmailChannel()
    yield chan
    await chan.aclose()


def settings(port: int, **overrides: Any) -> EmailSettings:
    return EmailSettings.model_validate({"host": "127.0.0.1", "port": port, "sender": SENDER, **overrides})


def test_registered_as_email() -> None:
    assert CHANNELS["email"] is EmailChannel
    assert EmailChannel.requires_template


async def test_delivers_a_utf8_multipart_message(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    message = make_message(content={"title": "充值成功通知", "body": "您已成功充值 100.00 元。\n<b>谢谢</b> & 再见"})

    result = await channel.send(message, settings(smtp_port))

    envelope = mailbox.envelopes[0]
    assert envelope.mail_from == "noreply@example.com"
    assert envelope.rcpt_tos == ["zhangsan@example.com"]
    assert envelope.original_content is not None
    raw_headers = envelope.original_content.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()  # non-ASCII subject and names travel as RFC 2047 encoded words

    mail = mailbox.only_message()
    assert mail["Subject"] == "充值成功通知"
    assert mail["From"].addresses[0].display_name == "Herald 通知"
    assert mail["From"].addresses[0].addr_spec == "noreply@example.com"
    assert mail["To"].addresses[0].display_name == "张三"
    assert mail["To"].addresses[0].addr_spec == "zhangsan@example.com"
    assert mail["X-Herald-Delivery-Id"] == message.delivery_id
    assert mail["Message-ID"] == "<dlv_01J9ZK3M8Q7W5E2R4T6Y8U0I1O@example.com>"
    assert result.provider_message_id == mail["Message-ID"]
    assert mail.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]

    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert _lf(text.get_content()) == "您已成功充值 100.00 元。\n<b>谢谢</b> & 再见\n"
    html_content = _lf(html.get_content())
    assert "您已成功充值 100.00 元。<br>" in html_content
    assert "&lt;b&gt;谢谢&lt;/b&gt; &amp; 再见" in html_content
    assert "<b>" not in html_content


async def test_uses_the_rendered_html_and_subject_fields(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    content = {
        "subject": "主题",
        "title": "标题",
        "text": "纯文本",
        "html": "<p>已转义 &amp; <b>粗体</b></p>",
    }

    await channel.send(make_message(content=content), settings(smtp_port))

    mail = mailbox.only_message()
    assert mail["Subject"] == "主题"
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and html is not None
    assert _lf(plain.get_content()) == "纯文本\n"
    assert _lf(html.get_content()) == "<p>已转义 &amp; <b>粗体</b></p>\n"


async def test_subject_falls_back_to_the_type(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(content={"summary": "only a summary"}), settings(smtp_port))

    mail = mailbox.only_message()
    assert mail["Subject"] == "recharge.succeeded"
    plain = mail.get_body(("plain",))
    assert plain is not None and _lf(plain.get_content()) == "only a summary\n"


async def test_recipient_without_name_gets_a_bare_address(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(recipient=Recipient(id="u2", email="bare@example.com")), settings(smtp_port))

    assert str(mailbox.only_message()["To"]) == "bare@example.com"


async def test_missing_email_is_skipped(channel: EmailChannel, make_message: Callable[..., OutboundMessage]) -> None:
    with pytest.raises(SkipDelivery, match="no email address"):
        await channel.send(make_message(recipient=Recipient(id="u3", name="无邮箱")), settings(1))


async def test_invalid_address_is_terminal(
    channel: EmailChannel, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="invalid email address"):
        await channel.send(make_message(recipient=Recipient(id="u4", email="not an address")), settings(smtp_port))


async def test_an_internationalized_domain_travels_as_punycode(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    recipient = Recipient(id="u5", name="李四", email="lisi@例子.中国")

    await channel.send(make_message(recipient=recipient), settings(smtp_port))

    assert mailbox.envelopes[0].rcpt_tos == ["lisi@xn--fsqu00a.xn--fiqs8s"]
    assert mailbox.only_message()["To"].addresses[0].addr_spec == "lisi@xn--fsqu00a.xn--fiqs8s"


async def test_a_non_ascii_local_part_is_terminal(
    channel: EmailChannel, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="invalid email address"):
        await channel.send(make_message(recipient=Recipient(id="u6", email="李四@example.com")), settings(smtp_port))


async def test_connection_refused_is_retryable(
    channel: EmailChannel, port_factory: Callable[[], int], make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError):
        await channel.send(make_message(), settings(port_factory()))


async def test_silent_server_times_out_as_retryable(
    channel: EmailChannel, make_message: Callable[..., OutboundMessage]
) -> None:
    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open without the 220 greeting

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RetryableError):
            await channel.send(make_message(), settings(port, timeout=0.3))
    finally:
        server.close()


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        ("550 5.1.1 No such user", TerminalError, "550"),
        ("451 4.3.0 Try again later", RetryableError, "451"),
    ],
)
async def test_refused_recipient_is_classified_by_reply_code(
    channel: EmailChannel,
    mailbox: Mailbox,
    smtp_port: int,
    make_message: Callable[..., OutboundMessage],
    reply: str,
    error: type[Exception],
    code: str,
) -> None:
    mailbox.rcpt_reply = reply

    with pytest.raises(error) as raised:
        await channel.send(make_message(), settings(smtp_port))

    assert getattr(raised.value, "code", None) == code


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [("554 5.6.0 Message rejected", TerminalError, "554"), ("452 4.3.1 Mailbox full", RetryableError, "452")],
)
async def test_refused_data_is_classified_by_reply_code(
    channel: EmailChannel,
    mailbox: Mailbox,
    smtp_port: int,
    make_message: Callable[..., OutboundMessage],
    reply: str,
    error: type[Exception],
    code: str,
) -> None:
    mailbox.data_reply = reply

    with pytest.raises(error) as raised:
        await channel.send(make_message(), settings(smtp_port))

    assert getattr(raised.value, "code", None) == code


@plain_auth_ok
async def test_login_with_username_and_password(
    channel: EmailChannel, mailbox: Mailbox, auth_smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    await channel.send(make_message(), settings(auth_smtp_port, username="herald", password="s3cret"))

    assert mailbox.only_message()["X-Herald-Delivery-Id"] == make_message().delivery_id


@plain_auth_ok
async def test_wrong_password_is_terminal(
    channel: EmailChannel, mailbox: Mailbox, auth_smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError) as raised:
        await channel.send(make_message(), settings(auth_smtp_port, username="herald", password="wrong"))

    assert raised.value.code == "535"
    assert mailbox.envelopes == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 0},
        {"port": 65536},
        {"ssl": True, "starttls": True},
        {"sender": "not an address"},
        {"sender": "Herald <>"},
        {"sender": "Herald\r\nBcc: victim@example.com <noreply@example.com>"},
        {"sender": "noreply@example.com\n"},
        {"username": "herald"},
        {"timeout": 0},
        {"unknown": 1},
    ],
)
def test_settings_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EmailSettings.model_validate({"host": "smtp.example.com", "sender": SENDER, **overrides})


def test_settings_defaults_and_secret_masking() -> None:
    parsed = EmailSettings.model_validate(
        {"host": "smtp.example.com", "sender": SENDER, "username": "herald", "password": "s3cret"}
    )

    assert (parsed.port, parsed.starttls, parsed.ssl, parsed.timeout) == (587, False, False, 10)
    assert "s3cret" not in parsed.model_dump_json()
    assert EmailSettings.secret_fields() == ["password"]


# -- permanent problems are terminal at once (never eight attempts) ---------------------------------


@pytest.mark.parametrize(
    ("overrides", "header"),
    [
        ({"content": {"subject": "充值成功\r\nBcc: victim@example.com", "body": "b"}}, "Subject"),
        ({"content": {"title": "line one\nline two", "body": "b"}}, "Subject"),
        ({"content": {"title": "carriage\ronly", "body": "b"}}, "Subject"),
        ({"content": {"title": "unicode\u2028separator", "body": "b"}}, "Subject"),
        ({"recipient": Recipient(id="u7", name="张三\r\nBcc: victim@example.com", email="z@example.com")}, "To"),
    ],
    ids=["crlf-subject", "lf-title", "cr-title", "u2028-title", "crlf-display-name"],
)
async def test_a_line_break_in_a_header_is_terminal(
    channel: EmailChannel,
    mailbox: Mailbox,
    smtp_port: int,
    make_message: Callable[..., OutboundMessage],
    overrides: dict[str, Any],
    header: str,
) -> None:
    with pytest.raises(TerminalError, match=rf"email {header} contains a line break \(CR or LF\)"):
        await channel.send(make_message(**overrides), settings(smtp_port))

    assert mailbox.envelopes == []


async def test_a_stored_sender_with_a_line_break_is_terminal(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    # saved before the settings refused it: model_construct skips validation as an old row would
    account = EmailSettings.model_construct(
        **{**settings(smtp_port).model_dump(), "sender": "Herald\r\nBcc: v@example.com <noreply@example.com>"}
    )

    with pytest.raises(TerminalError, match="email From contains a line break"):
        await channel.send(make_message(), account)

    assert mailbox.envelopes == []


@pytest.mark.parametrize(
    ("overrides", "what"),
    [
        ({"content": {"title": "bad \ud800 subject", "body": "b"}}, "email Subject"),
        ({"content": {"title": "t", "body": "bad \udfff body"}}, "email text body"),
        ({"content": {"title": "t", "body": "b", "html": "<p>\ud83d</p>"}}, "email HTML body"),
        ({"recipient": Recipient(id="u8", name="张\ud800", email="z@example.com")}, "email To"),
    ],
    ids=["subject", "text", "html", "display-name"],
)
async def test_text_with_no_utf8_form_is_terminal(
    channel: EmailChannel,
    mailbox: Mailbox,
    smtp_port: int,
    make_message: Callable[..., OutboundMessage],
    overrides: dict[str, Any],
    what: str,
) -> None:
    with pytest.raises(TerminalError, match=f"{what} is not valid UTF-8"):
        await channel.send(make_message(**overrides), settings(smtp_port))

    assert mailbox.envelopes == []


async def test_credentials_for_a_server_without_auth_are_terminal(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    # aiosmtpd offers no AUTH over plain text: the account's username/password cannot be used.
    with pytest.raises(TerminalError, match="AUTH extension is not supported"):
        await channel.send(make_message(), settings(smtp_port, username="herald", password="s3cret"))

    assert mailbox.envelopes == []


async def test_starttls_required_from_a_server_without_it_is_terminal(
    channel: EmailChannel, mailbox: Mailbox, smtp_port: int, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="STARTTLS"):
        await channel.send(make_message(), settings(smtp_port, starttls=True))

    assert mailbox.envelopes == []


@plain_auth_ok
async def test_a_temporary_authentication_failure_is_retryable(
    channel: EmailChannel,
    mailbox: Mailbox,
    temporary_auth_failure_port: int,
    make_message: Callable[..., OutboundMessage],
) -> None:
    with pytest.raises(RetryableError) as raised:
        await channel.send(make_message(), settings(temporary_auth_failure_port, username="herald", password="s3cret"))

    assert raised.value.code == "454"


def _cert_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    exc.verify_message = "self-signed certificate"
    return exc


def _wrapped_cert_error() -> aiosmtplib.SMTPConnectError:
    wrapped = aiosmtplib.SMTPConnectError("Error connecting to smtp.example.com on port 465")
    wrapped.__cause__ = _cert_error()
    return wrapped


@pytest.mark.parametrize(
    ("exc", "error", "code"),
    [
        (aiosmtplib.SMTPException("The SMTP AUTH extension is not supported by this server."), TerminalError, None),
        (aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."), TerminalError, None),
        (aiosmtplib.SMTPException("No suitable authentication method found."), TerminalError, None),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid"), TerminalError, "535"),
        (aiosmtplib.SMTPAuthenticationError(534, "5.7.9 Please log in with your web browser"), TerminalError, "534"),
        (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 Temporary authentication failure"), RetryableError, "454"),
        (
            aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender not owned by user", "noreply@example.com"),
            TerminalError,
            "553",
        ),
        (aiosmtplib.SMTPConnectResponseError(554, "5.7.1 Your IP is blocked"), TerminalError, "554"),
        (aiosmtplib.SMTPConnectResponseError(421, "4.3.2 Service not available"), RetryableError, "421"),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "5.1.1 No such user", "x@y.z")]),
            TerminalError,
            "550",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "4.2.0 Greylisted", "x@y.z")]),
            RetryableError,
            "450",
        ),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server"), TerminalError, None),
        (aiosmtplib.SMTPServerDisconnected("Connection lost"), RetryableError, None),
        (aiosmtplib.SMTPConnectError("Error connecting: [Errno 111] Connection refused"), RetryableError, None),
        (aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"), RetryableError, None),
        (ConnectionResetError(104, "Connection reset by peer"), RetryableError, None),
        (_cert_error(), TerminalError, None),  # STARTTLS raises it as is
        (_wrapped_cert_error(), TerminalError, None),  # implicit TLS wraps it
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_smtp_errors_are_classified_by_permanence(exc: BaseException, error: type[Exception], code: str | None) -> None:
    classified = classify_smtp_error(exc)

    assert type(classified) is error
    assert classified.code == code
