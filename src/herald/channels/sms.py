"""``sms``: one logical SMS channel over every SMS provider account (Aliyun, Tencent Cloud).

A notification type lists ``sms`` and has a template for each provider it may go through
(``sms_aliyun``: template_code + params; ``sms_tencent``: template_id + params). Each delivery is
sent through one account of those providers, chosen by the accounts' ``weight`` (0 = failover
only); after a retryable error the next attempt goes to another account, so another provider.
"""

from __future__ import annotations

from typing import Any

from herald.channels.base import Channel, OutboundMessage, SendResult


class SmsRoute(Channel):
    name = "sms"
    title = "SMS (routed over the SMS provider accounts) / 短信"
    requires_template = False
    requires_account = False
    # routes_over is filled by the registry from the providers declaring routes_for = "sms"

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        raise NotImplementedError("the engine sends sms deliveries through a provider channel")
