from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Mailbox, Receiver, free_port, serve_asgi, smtp_server


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    with smtp_server(box, port):
        yield box, port


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with serve_asgi(receiver, free_port()) as base:
        yield receiver, f"{base}/hook"


@pytest.fixture
def webhook(webhook_server: tuple[Receiver, str]) -> tuple[Receiver, str]:
    webhook_server[0].reset()
    return webhook_server
