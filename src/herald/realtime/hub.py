"""The per-process hub: which users have streams open here, and each stream's events waiting to go out.

A stream is one SSE response or one WebSocket. Events are pushed without awaiting (the backplane
listener must never wait on a slow client); each stream keeps what waits for it in a small queue and
its own connection task writes it out. A client that cannot keep up is not buffered without end: past
``max_pending`` events its queue is dropped and the stream asked to replay from the store instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator, KeysView
from datetime import datetime

from herald.realtime.ids import event_id_time

COUNTS = "counts"


class Event:
    """One event, its data already JSON: the same object goes to every stream it is for, and its
    wire forms are built once, not once per stream."""

    __slots__ = ("_sse", "data", "id", "name")

    def __init__(self, event_id: str, name: str, data: str) -> None:
        self.id = event_id
        self.name = name
        self.data = data
        self._sse: bytes | None = None

    def sse(self) -> bytes:
        """The Server-Sent Events frame (``data`` is one line: JSON escapes its newlines). An event
        without an id leaves the client's last event id as it was."""
        if self._sse is None:
            head = f"id: {self.id}\n" if self.id else ""
            self._sse = f"{head}event: {self.name}\ndata: {self.data}\n\n".encode()
        return self._sse

    def json(self) -> str:
        """The WebSocket frame: ``{"id", "event", "data"}`` (``id`` null when the event has none)."""
        event_id = f'"{self.id}"' if self.id else "null"
        return f'{{"id":{event_id},"event":"{self.name}","data":{self.data}}}'

    def __repr__(self) -> str:
        return f"Event({self.id!r}, {self.name!r}, {self.data[:60]!r})"


class TooManyStreams(Exception):
    pass


class Stream:
    """What one open connection is waiting to send."""

    __slots__ = ("_events", "_waiter", "closed", "max_pending", "resync_since", "user_id")

    def __init__(self, user_id: str, max_pending: int) -> None:
        self.user_id = user_id
        self.max_pending = max_pending
        self.closed = False
        self.resync_since: datetime | None = None
        """Set when events may have been lost: the connection replays from the store since then."""
        self._events: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if len(self._events) >= self.max_pending:
            # a client this far behind gets a replay from the store rather than an ever-growing queue
            since = event_id_time(self._events[0].id)
            self._events.clear()
            self.request_resync(since)
            return
        self._events.append(event)
        self.wake()

    def request_resync(self, since: datetime) -> None:
        if self.resync_since is None or since < self.resync_since:
            self.resync_since = since
        self.wake()

    def close(self) -> None:
        self.closed = True
        self.wake()

    @property
    def ready(self) -> bool:
        return bool(self._events) or self.closed or self.resync_since is not None

    async def wait(self, seconds: float) -> None:
        """Until an event, a resync or a close, or ``seconds`` (a timer, not a task per wait)."""
        if self.ready or seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> list[Event]:
        """What waits, oldest first; of several ``counts`` only the last is worth sending."""
        events = list(self._events)
        self._events.clear()
        last_counts = next((i for i in range(len(events) - 1, -1, -1) if events[i].name == COUNTS), None)
        if last_counts is not None:
            events = [e for i, e in enumerate(events) if e.name != COUNTS or i == last_counts]
        return events

    def wake(self) -> None:
        """Have the connection look again (an event, a resync, a close, a token that changed)."""
        if self._waiter is not None:
            _wake(self._waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Hub:
    def __init__(self, *, max_streams_per_user: int = 20, max_pending: int = 1000) -> None:
        self.max_streams_per_user = max_streams_per_user
        self.max_pending = max_pending
        self._by_user: dict[str, list[Stream]] = {}

    def open(self, user_id: str) -> Stream:
        streams = self._by_user.setdefault(user_id, [])
        if len(streams) >= self.max_streams_per_user:
            raise TooManyStreams(user_id)
        stream = Stream(user_id, self.max_pending)
        streams.append(stream)
        return stream

    def close(self, stream: Stream) -> None:
        stream.close()
        streams = self._by_user.get(stream.user_id)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self._by_user[stream.user_id]

    def users(self) -> KeysView[str]:
        """Users with at least one stream open in this process."""
        return self._by_user.keys()

    def local(self, user_ids: Iterable[str]) -> list[str]:
        """Those of ``user_ids`` connected here, each once."""
        here = self._by_user
        return list(dict.fromkeys(u for u in user_ids if u in here))

    def streams(self) -> Iterator[Stream]:
        for streams in list(self._by_user.values()):
            yield from streams

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_user.values())

    def push(self, user_id: str, event: Event) -> None:
        for stream in self._by_user.get(user_id, ()):
            stream.push(event)

    def resync_all(self, since: datetime) -> None:
        for stream in self.streams():
            stream.request_resync(since)

    def close_all(self) -> None:
        for stream in self.streams():
            stream.close()
