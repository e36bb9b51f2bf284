"""EmailChannel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from pydantic import ValidationError

from herald.channels import CHANNELS
from herald.channels.base import OutboundMessage, Recipient
from herald.channels.email import EmailChannel, EmailSettings
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
