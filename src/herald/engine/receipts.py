"""Delivery reports from providers (SMS status reports): sent -> delivered / undelivered."""

from __future__ import annotations

import hashlib
import hmac

from herald.channels.base import Receipt
from herald.engine.service import Herald
from herald.store import deliveries as delivery_store
from herald.store.types import utcnow


def callback_token(secret_key: str, channel: str, account: str) -> str:
    """The per-account token a provider's callback URL carries (derived, so nothing to store)."""
    digest = hmac.new(secret_key.encode(), f"callback:{channel}:{account}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def token_matches(secret_key: str, channel: str, account: str, token: str) -> bool:
    return hmac.compare_digest(callback_token(secret_key, channel, account), token)


async def apply_receipts(herald: Herald, channel: str, receipts: list[Receipt]) -> int:
    """Record each report on its delivery; returns how many deliveries changed."""
    changed = 0
    now = utcnow()
    async with herald.db.write() as conn:
        for receipt in receipts:
            delivery = await delivery_store.find_for_receipt(
                conn, channel, receipt.delivery_id, receipt.provider_message_id
            )
            if delivery is None:
                continue
            status = "delivered" if receipt.delivered else "undelivered"
            detail = " ".join(p for p in (receipt.code, receipt.message) if p) or None
            if not await delivery_store.record_receipt(
                conn,
                delivery["id"],
                status=status,
                reason=None if receipt.delivered else "provider_reported",
                detail=None if receipt.delivered else detail,
                now=now,
            ):
                continue
            changed += 1
            await herald.events.emit(
                conn,
                "message.delivered" if receipt.delivered else "message.failed",
                {
                    "delivery_id": delivery["id"],
                    "notification_id": delivery["notification_id"],
                    "user_id": delivery["user_id"],
                    "channel": channel,
                    "account": delivery["account"],
                    "status": status,
                    "code": receipt.code,
                    "reason": detail,
                    "provider_message_id": delivery["provider_message_id"],
                },
            )
    return changed
