"""Outbound events to the business system: message.sent / delivered / failed / read.

An event is queued as a job in the same transaction as the state change it reports, so it is
neither lost nor sent for a change that rolled back; the job POSTs it signed per Standard
Webhooks (webhook-id = the event id, stable across retries) and is retried like any work.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels.webhook import WebhookChannel, WebhookSettings
from herald.core.errors import RetryableError, TerminalError
from herald.core.ids import new_id
from herald.store import event_webhooks as store
from herald.store import jobs as job_store
from herald.store.types import utcnow

if TYPE_CHECKING:
    from herald.engine.service import Herald

EVENT_TYPES = ("message.sent", "message.delivered", "message.failed", "message.read")
JOB_KIND = "event"
_CACHE_SECONDS = 2.0


class EventSubscriptions:
    """Which webhooks want which events, held a few seconds per process: most installations have
    none, and then reporting an event costs nothing."""

    def __init__(self) -> None:
        self._by_event: dict[str, list[str]] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def names_for(self, herald: Herald, conn: AsyncConnection, event: str) -> list[str]:
        if time.monotonic() - self._loaded_at > _CACHE_SECONDS:
            by_event: dict[str, list[str]] = {}
            for hook in await store.list_event_webhooks(conn, herald.box):
                for e in hook["events"]:
                    by_event.setdefault(e, []).append(hook["name"])
            self._by_event, self._loaded_at = by_event, time.monotonic()
        return self._by_event.get(event, [])


async def emit(herald: Herald, conn: AsyncConnection, event: str, data: dict[str, Any]) -> None:
    """Queue ``event`` for every webhook subscribed to it, inside the caller's transaction."""
    names = await herald.event_subscriptions.names_for(herald, conn, event)
    now = utcnow()
    for name in names:
        payload = {"webhook": name, "id": new_id("evt"), "type": event, "timestamp": now.isoformat(), "data": data}
        await job_store.enqueue_job(conn, JOB_KIND, payload, run_at=now, now=now)
    if names:
        herald.wake_worker()


async def run_event_job(herald: Herald, job: dict[str, Any]) -> None:
    """POST one event; raises RetryableError to be retried, returns when done (or dropped)."""
    payload = job["payload"]
    async with herald.db.read() as conn:
        hook = await store.get_event_webhook(conn, herald.box, payload["webhook"])
    if hook is None or hook["secret"] is None:
        return  # the webhook was removed (or cannot be decrypted): nothing to deliver to
    body = json.dumps(
        {"type": payload["type"], "timestamp": payload["timestamp"], "data": payload["data"]},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    channel = herald.channels.get("webhook")
    assert isinstance(channel, WebhookChannel)
    settings = WebhookSettings.model_validate({"url": hook["url"], "secret": hook["secret"]})
    try:
        await channel.post_signed(settings, payload["id"], body, datetime.now(UTC))
    except TerminalError as exc:  # a 4xx: the receiver refuses it; retrying would not help
        raise PermanentJobError(exc.message) from exc
    except RetryableError:
        raise


class PermanentJobError(Exception):
    pass
