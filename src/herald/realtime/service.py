"""One process's realtime: the backplane, the publisher in front of it, the hub behind it, and the
listener that carries every backplane message to a handler.

The listener never dies of a message or an outage: a message that cannot be handled is logged and
the streams replay; a lost backplane is logged, retried with backoff, and once subscribed again
every stream replays the stretch it was away (``gap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from herald.realtime.backplane import Backplane, create_backplane
from herald.realtime.hub import Hub
from herald.realtime.publisher import GAP, Publisher

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]
RETRY_SECONDS = (0.2, 5.0)
START_WAIT_SECONDS = 3.0
"""How long an API process waits at start for its first subscription before serving anyway."""


class Realtime:
    def __init__(
        self,
        url: str | None,
        *,
        heartbeat_seconds: float = 15.0,
        max_streams_per_user: int = 20,
        backplane: Backplane | None = None,
    ) -> None:
        self.backplane = backplane if backplane is not None else create_backplane(url)
        self.publisher = Publisher(self.backplane)
        self.hub = Hub(max_streams_per_user=max_streams_per_user)
        self.heartbeat_seconds = heartbeat_seconds
        self._listener: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None

    def publish(self, message: Mapping[str, Any]) -> None:
        """Queue ``message`` for every listening process (this one included); never blocks or raises."""
        self.publisher.publish(message)

    @property
    def subscribed(self) -> bool:
        return self._subscribed is not None and self._subscribed.is_set()

    async def start(self, handle: Handler) -> None:
        """Listen on the backplane and hand each message to ``handle``; returns once subscribed
        (or after ``START_WAIT_SECONDS`` when the backplane is not reachable yet)."""
        if self._listener is not None:
            return
        self._subscribed = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(handle), name="herald-realtime-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), START_WAIT_SECONDS)

    async def _listen(self, handle: Handler) -> None:
        assert self._subscribed is not None
        down_since: datetime | None = None
        wait = RETRY_SECONDS[0]
        while True:
            try:
                subscription = await self.backplane.subscribe()
            except Exception as exc:
                if down_since is None:
                    down_since = datetime.now(UTC)
                    log.warning("realtime backplane unreachable (%s): retrying", exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_SECONDS[1])
                continue
            self._subscribed.set()
            wait = RETRY_SECONDS[0]
            try:
                if down_since is not None:
                    log.warning("realtime backplane subscribed again; streams replay events since %s", down_since)
                    await self._handle(handle, {"k": GAP, "since": down_since.isoformat()})
                    down_since = None
                while True:
                    text = await subscription.next_message()
                    try:
                        message = json.loads(text)
                    except ValueError:
                        log.warning("realtime: a backplane message that is not JSON was ignored")
                        continue
                    if isinstance(message, dict):
                        await self._handle(handle, message)
            except Exception as exc:
                self._subscribed.clear()
                down_since = datetime.now(UTC)
                log.warning("realtime backplane lost (%s): resubscribing", exc)
            finally:
                await subscription.aclose()

    async def _handle(self, handle: Handler, message: dict[str, Any]) -> None:
        try:
            await handle(message)
        except Exception:
            # the streams it was for missed something: they replay it from the store
            log.exception("realtime message %r not delivered; open streams replay", message.get("k"))
            self.hub.resync_all(datetime.now(UTC))

    async def aclose(self) -> None:
        await self.publisher.aclose()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._listener
            self._listener = None
        self.hub.close_all()
        await self.backplane.aclose()
