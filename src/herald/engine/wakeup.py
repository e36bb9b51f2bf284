"""PostgreSQL wake-up: workers LISTEN on a channel that every transaction adding due work NOTIFYs
(``store.queue.notify_work``), so the first send after a trigger does not wait for the poll
interval. Polling stays as the fallback: a lost connection only costs latency, never work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from herald.config import Settings
from herald.store.queue import WORK_CHANNEL

log = logging.getLogger(__name__)


class PostgresWakeup:
    def __init__(self, dsn: str, wake: Callable[[], None]) -> None:
        self._dsn = dsn
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, wake: Callable[[], None]) -> PostgresWakeup | None:
        if settings.is_sqlite or not settings.pg_notify:
            return None
        url = make_url(settings.database_url).set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False), wake)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="herald-pg-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, *_: Any) -> None:
        self._wake()

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # PostgreSQL only: never loaded on SQLite

        pause = 1.0
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _conn, flag=closed: flag.set())
                await conn.add_listener(WORK_CHANNEL, self._notified)
                pause = 1.0
                self._wake()  # anything added while we were not listening
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), 30)
                    if closed.is_set():
                        raise ConnectionError("listener connection closed")
                    await conn.execute("SELECT 1", timeout=10)  # a half-open connection shows here
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN %s failed (%s); polling until it is back", WORK_CHANNEL, type(exc).__name__)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)
