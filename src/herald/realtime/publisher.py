"""Publishing without waiting: a bounded queue in memory, emptied onto the backplane by one task.

Whoever publishes (a trigger that just committed, a worker between two chunks) puts the message in
the queue and goes on: no network round trip, no timeout to wait out when Redis is away, no error
to handle. A message that cannot be sent is logged and dropped; once the backplane answers again a
``gap`` notice goes out first, naming when the losses began, and every listener has its streams
replay that stretch from the store. Realtime is a read-side convenience: it must never fail or slow
the write it reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from herald.realtime.backplane import Backplane

log = logging.getLogger(__name__)

GAP = "gap"
"""Message kind: ``{"k": "gap", "since": <RFC 3339>}``: messages from then on may have been lost."""
MAX_PENDING = 10_000
RETRY_SECONDS = (0.2, 5.0)  # first and longest wait between attempts while the backplane is away


def encode(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Publisher:
    def __init__(self, backplane: Backplane, *, max_pending: int = MAX_PENDING) -> None:
        self._backplane = backplane
        self._max_pending = max_pending
        self._queue: asyncio.Queue[tuple[datetime, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gap_since: datetime | None = None
        self.sent = 0
        self.dropped = 0

    def publish(self, message: Mapping[str, Any]) -> None:
        """Queue ``message`` for the backplane; never blocks, never raises."""
        try:
            text = encode(message)
            loop = asyncio.get_running_loop()
        except (TypeError, ValueError, RuntimeError):
            log.exception("realtime message not published: %s", message.get("k"))
            return
        if self._queue is None or self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._queue = asyncio.Queue(self._max_pending)
            self._task = loop.create_task(self._run(self._queue), name="herald-realtime-publisher")
        try:
            self._queue.put_nowait((datetime.now(UTC), text))
        except asyncio.QueueFull:
            self._dropped(datetime.now(UTC), "too many messages waiting")

    @property
    def healthy(self) -> bool:
        """False from a lost message until the backplane has taken the gap notice."""
        return self._gap_since is None

    def _dropped(self, at: datetime, reason: object) -> None:
        self.dropped += 1
        if self._gap_since is None:
            self._gap_since = at
            log.warning(
                "realtime backplane unreachable (%s): events are dropped until it is back;"
                " open streams will then replay them from the store",
                reason,
            )

    async def _run(self, queue: asyncio.Queue[tuple[datetime, str]]) -> None:
        wait = RETRY_SECONDS[0]
        while True:
            if self._gap_since is not None:
                while not queue.empty():  # covered by the gap notice: the streams replay them
                    queue.get_nowait()
                    queue.task_done()
                    self.dropped += 1
                try:
                    await self._backplane.publish(encode({"k": GAP, "since": self._gap_since.isoformat()}))
                except Exception as exc:  # still away
                    log.debug("realtime backplane still unreachable: %s", exc)
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, RETRY_SECONDS[1])
                    continue
                log.warning("realtime backplane reachable again; streams replay events since %s", self._gap_since)
                self._gap_since = None
                wait = RETRY_SECONDS[0]
            at, text = await queue.get()
            try:
                await self._backplane.publish(text)
                self.sent += 1
            except Exception as exc:
                self._dropped(at, exc)
            finally:
                queue.task_done()

    async def flush(self, within: float = 2.0) -> None:
        """Wait (at most ``within`` seconds) until what was queued has been handed to the backplane."""
        if self._queue is not None and self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), within)

    async def aclose(self, within: float = 2.0) -> None:
        await self.flush(within)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                if self._loop is asyncio.get_running_loop():
                    await self._task
        self._task = self._queue = None
