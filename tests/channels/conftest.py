"""Fixtures shared by the channel tests: a message factory and free local ports."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from herald.channels.base import OutboundMessage, Recipient


def free_port() -> int:
    """A port nothing listens on right now (bound then released; fine for a single test run)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def port_factory() -> Callable[[], int]:
    return free_port


@pytest.fixture
def recipient() -> Recipient:
    return Recipient(id="u1", name="张三", email="zhangsan@example.com", phone="+8613800000000")


@pytest.fixture
def make_message(recipient: Recipient) -> Callable[..., OutboundMessage]:
    def make(**overrides: Any) -> OutboundMessage:
        fields: dict[str, Any] = {
            "delivery_id": "dlv_01J9ZK3M8Q7W5E2R4T6Y8U0I1O",
            "notification_id": "ntf_01J9ZK3M8Q7W5E2R4T6Y8U0I1P",
            "type": "recharge.succeeded",
            "category": "reminder",
            "recipient": recipient,
            "content": {"title": "充值成功", "body": "您已成功充值 100.00 元。"},
            "data": {"amount": "100.00"},
        }
        fields.update(overrides)
        return OutboundMessage(**fields)

    return make
