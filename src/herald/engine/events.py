"""Outbound events to the business system: message.sent / delivered / failed / read / action.

An event is queued as a job in the same transaction as the state change it reports, so it is
neither lost nor sent for a change that rolled back; the job POSTs it signed per Standard
Webhooks (webhook-id = the event id, stable across retries) and is retried like any work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels.base import Channel, ChannelSettings
from herald.core.errors import PermanentJobError, TerminalError
from herald.core.ids import new_id
from herald.store import event_webhooks as store
from herald.store import jobs as job_store
from herald.store.db import Database
from herald.store.records import Job
from herald.store.secretbox import SecretBox
from herald.store.types import utcnow

EVENT_CHANNEL = "webhook"
"""The registry's channel that posts events: anything with ``post_signed`` (Standard Webhooks)."""
EVENT_TYPES = ("message.sent", "message.delivered", "message.failed", "message.read", "message.action")
JOB_KIND = "event"
_CACHE_SECONDS = 2.0


class EventOutbox:
    """Queues events for the webhooks subscribed to them. Which webhooks want which events is
    held a few seconds per process: most installations have none, and then an event costs nothing."""

    def __init__(self, box: SecretBox, wake: Callable[[], None]) -> None:
        self._box = box
        self._wake = wake
        self._by_event: dict[str, list[str]] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def _names_for(self, conn: AsyncConnection, event: str) -> list[str]:
        if time.monotonic() - self._loaded_at > _CACHE_SECONDS:
            by_event: dict[str, list[str]] = {}
            for hook in await store.list_event_webhooks(conn, self._box):
                for e in hook["events"]:
                    by_event.setdefault(e, []).append(hook["name"])
            self._by_event, self._loaded_at = by_event, time.monotonic()
        return self._by_event.get(event, [])

    async def emit(self, conn: AsyncConnection, event: str, data: dict[str, Any]) -> None:
        """Queue ``event`` for every webhook subscribed to it, inside the caller's transaction."""
        names = await self._names_for(conn, event)
        now = utcnow()
        for name in names:
            payload = {"webhook": name, "id": new_id("evt"), "type": event, "timestamp": now.isoformat(), "data": data}
            await job_store.enqueue_job(conn, JOB_KIND, payload, run_at=now, now=now)
        if names:
            self._wake()


class SignedPoster(Protocol):
    """What event delivery needs of a channel: its settings model and a signed POST."""

    Settings: ClassVar[type[ChannelSettings]]

    async def post_signed(self, settings: Any, msg_id: str, body: bytes, now: datetime) -> Any: ...


def event_poster(channels: Mapping[str, Channel]) -> SignedPoster | None:
    channel = channels.get(EVENT_CHANNEL)
    return channel if isinstance(channel, Channel) and hasattr(channel, "post_signed") else None


class EventJobHandler:
    """Handles ``event`` jobs: POSTs one event; a 4xx ends it, other failures are retried."""

    kind = JOB_KIND

    def __init__(self, db: Database, box: SecretBox, channel: SignedPoster) -> None:
        self._db, self._box, self._channel = db, box, channel

    async def __call__(self, job: Job, owner: str) -> None:
        payload = job.payload
        async with self._db.read() as conn:
            hook = await store.get_event_webhook(conn, self._box, payload["webhook"])
        if hook is not None and hook["secret"] is not None:  # else removed (or undecryptable): nothing to do
            body = json.dumps(
                {"type": payload["type"], "timestamp": payload["timestamp"], "data": payload["data"]},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            settings = self._channel.Settings.model_validate({"url": hook["url"], "secret": hook["secret"]})
            try:
                await self._channel.post_signed(settings, payload["id"], body, datetime.now(UTC))
            except TerminalError as exc:  # a 4xx: the receiver refuses it; retrying would not help
                raise PermanentJobError(exc.message) from exc
        async with self._db.write() as conn:
            await job_store.finish_job(conn, job.id, owner=owner, status="done", now=utcnow())
