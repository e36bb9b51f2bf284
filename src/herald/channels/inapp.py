"""The in-app inbox (站内信). Written by the engine at trigger time, so ``send`` is never called."""

from __future__ import annotations

from typing import Any

from herald.channels.base import Channel, OutboundMessage, SendResult


class InAppChannel(Channel):
    name = "inapp"
    title = "In-app inbox / 站内信"
    requires_template = True
    requires_account = False

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        raise NotImplementedError("in-app items are written by the engine when the notification is accepted")
