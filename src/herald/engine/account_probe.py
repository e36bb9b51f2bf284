"""The "send a test" of a channel account: one real message through it, to an address an admin typed,
and the provider's answer as text (the console's channel-account page).

Nothing is stored: no notification, no delivery, no attempt. The send is time-limited and every
failure comes back as words, never as an exception, so a broken provider cannot break the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from herald.channels.base import Channel, OutboundMessage, Recipient
from herald.core.errors import DeliveryError, Invalid, NotFound
from herald.core.ids import new_id
from herald.core.inputs import text_problem
from herald.engine.urls import require_public_url
from herald.store import accounts as account_store
from herald.store.db import Database
from herald.store.secretbox import SecretBox

TEST_TIMEOUT_SECONDS = 30.0
MAX_ADDRESS_LENGTH = 320  # an email address's own limit; phone numbers and ids are far shorter
TEST_RECIPIENT_ID = "herald-console-test"
TEST_TITLE = "Herald test message / Herald 测试消息"
TEST_BODY = "This is a test sent from the Herald console. 这是一条来自 Herald 管理后台的测试消息。"


class _EveryAddress(dict[str, Any]):
    """A recipient's per-channel addresses that answer the typed address under every key: the engine
    names no channel, so it cannot know which key (an openid, a user id) the account's channel reads."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self._address = address

    def get(self, key: str, default: Any = None) -> Any:
        return self._address

    def __getitem__(self, key: str) -> Any:
        return self._address

    def __contains__(self, key: object) -> bool:
        return True


@dataclass(frozen=True)
class TestAnswer:
    """What happened: ``ok`` and the provider's answer (its message id, or its error) as text."""

    ok: bool
    answer: str


async def check_test_address(address: str, *, allow_private: bool) -> str:
    """The address trimmed, or ``Invalid`` naming ``address``: empty, too long, not text, or a URL
    that fails the SSRF rules user-supplied URLs follow."""
    address = address.strip()
    if not address:
        raise Invalid([("address", "type an address to send the test to")])
    if len(address) > MAX_ADDRESS_LENGTH:
        raise Invalid([("address", f"at most {MAX_ADDRESS_LENGTH} characters")])
    problem = text_problem(address)
    if problem is not None or any(c in address for c in "\r\n"):
        raise Invalid([("address", problem or "contains a line break")])
    if "://" in address:
        await require_public_url(address, field="address", allow_private=allow_private)
    return address


def test_message(address: str) -> OutboundMessage:
    """The small fixed message a test sends (every text field a channel's template may carry)."""
    recipient = Recipient(id=TEST_RECIPIENT_ID, email=address, phone=address, channels=_EveryAddress(address))
    content = {key: TEST_BODY for key in ("body", "text", "content", "summary", "markdown")}
    content.update(title=TEST_TITLE, subject=TEST_TITLE)
    return OutboundMessage(
        delivery_id=new_id("dlv"),
        notification_id=new_id("ntf"),
        type="herald.test",
        category="test",
        recipient=recipient,
        content=content,
        data={},
    )


async def send_test(
    db: Database,
    box: SecretBox,
    channels: Mapping[str, Channel],
    name: str,
    address: str,
    *,
    allow_private_urls: bool,
    limit_seconds: float = TEST_TIMEOUT_SECONDS,
) -> TestAnswer:
    """Send the test message through account ``name`` to ``address``. ``NotFound`` for no such account,
    ``Invalid`` naming ``address`` for a bad address; anything the send does is the answer."""
    async with db.read() as conn:
        account = await account_store.get_account(conn, box, name)
    if account is None:
        raise NotFound("channel account")
    address = await check_test_address(address, allow_private=allow_private_urls)
    channel = channels.get(account["channel"])
    if channel is None:
        return TestAnswer(False, f"channel '{account['channel']}' is not installed")
    if account["config"] is None:
        return TestAnswer(False, account.get("error") or "the account's settings cannot be read")
    try:
        settings = channel.Settings.model_validate(account["config"])
    except ValidationError as exc:
        return TestAnswer(False, f"the stored settings are not valid: {exc.error_count()} problem(s)")
    message = test_message(address)
    try:
        async with asyncio.timeout(limit_seconds):
            result = await channel.send(message, settings)
    except TimeoutError:
        return TestAnswer(False, f"no answer within {limit_seconds:g} seconds")
    except DeliveryError as exc:
        code = f" [{exc.code}]" if getattr(exc, "code", None) else ""
        return TestAnswer(False, f"{type(exc).__name__}{code}: {exc}")
    except Exception as exc:  # a channel's bug is this test's answer, not the console's 500
        return TestAnswer(False, f"{type(exc).__name__}: {exc}")
    parts = [f"provider message id: {result.provider_message_id}" if result.provider_message_id else "accepted"]
    if result.detail:
        parts.append(result.detail)
    return TestAnswer(True, "; ".join(parts))
