"""The backplane: one channel every process publishes to and every API process listens on.

Chosen by URL like encode/broadcaster: in-process (``memory://``, the default: ``herald serve`` is
one process) or Redis pub/sub (``redis://``, ``rediss://``, ``unix://``: ``herald api`` ×N and
``herald worker`` ×M). Messages are short JSON texts naming users and ids; Redis pub/sub keeps
nothing, so a message sent while a listener is away is lost to it, which the listener makes up for
by asking its streams to replay from the store (see ``service.Realtime``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from herald.core.backends import REDIS_SCHEMES, refuse_scheme, url_scheme

CHANNEL = "herald:realtime"
MEMORY_SCHEME = "memory"


class Subscription(Protocol):
    async def next_message(self) -> str:
        """The next message; raises (ConnectionError, OSError, …) when the backplane is lost."""

    async def aclose(self) -> None: ...


class Backplane(Protocol):
    async def publish(self, message: str) -> None:
        """Send ``message`` to every subscriber; raises when the backplane cannot be reached."""

    async def subscribe(self) -> Subscription:
        """A subscription receiving every message published from now on."""

    async def aclose(self) -> None: ...


class _MemorySubscription:
    def __init__(self, owner: MemoryBackplane) -> None:
        self._owner = owner
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def next_message(self) -> str:
        return await self.queue.get()

    async def aclose(self) -> None:
        self._owner.subscriptions.discard(self)


class MemoryBackplane:
    """Every subscription of this process gets every message; nothing crosses a process boundary."""

    def __init__(self) -> None:
        self.subscriptions: set[_MemorySubscription] = set()

    async def publish(self, message: str) -> None:
        for subscription in list(self.subscriptions):
            subscription.queue.put_nowait(message)

    async def subscribe(self) -> Subscription:
        subscription = _MemorySubscription(self)
        self.subscriptions.add(subscription)
        return subscription

    async def aclose(self) -> None:
        self.subscriptions.clear()


class _RedisSubscription:
    """One pub/sub connection. Quiet for ``ping_seconds``: a PING; no answer within as long again:
    the server is taken for gone (a half-open TCP connection would otherwise wait forever)."""

    def __init__(self, pubsub: Any, ping_seconds: float) -> None:
        self._pubsub = pubsub
        self._ping_seconds = ping_seconds
        self._ping_sent_at: float | None = None

    async def next_message(self) -> str:
        loop = asyncio.get_running_loop()
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self._ping_seconds)
            if message is None:
                if self._ping_sent_at is None:
                    await self._pubsub.ping()
                    self._ping_sent_at = loop.time()
                elif loop.time() - self._ping_sent_at > self._ping_seconds:
                    raise ConnectionError("the Redis server did not answer PING")
                continue
            self._ping_sent_at = None  # anything heard: the server is there
            if message.get("type") == "message":
                return str(message["data"])

    async def aclose(self) -> None:
        try:
            await self._pubsub.aclose()
        except Exception:  # noqa: S110 (closing a subscription whose server is gone: nothing to do)
            pass


class RedisBackplane:
    """Redis pub/sub on one channel. Publishing fails fast (short timeouts) when Redis is away:
    the publisher drops the message and the listeners replay the gap from the store."""

    def __init__(self, url: str, channel: str | None = None, *, ping_seconds: float = 5.0) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._ping_seconds = ping_seconds
        # one retry: a pooled connection that died with a restarted server is replaced once
        self._publisher = redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 1)
        )
        # No silent reconnect under the subscription: redis-py would resubscribe by itself and the
        # messages sent meanwhile would be lost without anyone knowing. A lost connection raises,
        # and the listener resubscribes and has its streams replay the gap.
        self._subscriber = redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_keepalive=True, retry=Retry(NoBackoff(), 0)
        )
        # Pub/sub channels are server-wide, not per database: two Heralds on one Redis server with
        # different database numbers must not hear each other, so the number is in the channel's name.
        self.channel = channel or f"{CHANNEL}:{self._publisher.connection_pool.connection_kwargs.get('db', 0)}"

    async def publish(self, message: str) -> None:
        await self._publisher.publish(self.channel, message)

    async def subscribe(self) -> Subscription:
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
        except BaseException:
            await _RedisSubscription(pubsub, self._ping_seconds).aclose()
            raise
        return _RedisSubscription(pubsub, self._ping_seconds)

    async def aclose(self) -> None:
        await self._publisher.aclose()
        await self._subscriber.aclose()


def create_backplane(url: str | None) -> Backplane:
    """The backplane ``url`` names: None or ``memory://`` in-process, a Redis URL Redis pub/sub."""
    scheme = url_scheme(url) if url else MEMORY_SCHEME
    if scheme == MEMORY_SCHEME:
        return MemoryBackplane()
    if scheme in REDIS_SCHEMES:
        assert url is not None
        return RedisBackplane(url)
    raise refuse_scheme("HERALD_REDIS_URL", url or "", (MEMORY_SCHEME, *REDIS_SCHEMES))
