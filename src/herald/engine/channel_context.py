"""The engine's side of a channel's own routes: ``ChannelRequest`` over the store.

Everything one request writes (endpoints, grants) goes through one transaction, opened on the first
write and committed when the request's block ends, so an idempotent route can record its answer in
that same transaction. Reads before the first write use a read connection (a slow SSRF check never
holds the SQLite writer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels.base import Channel, PublicAccount
from herald.core.records import Endpoint
from herald.engine.service import Herald
from herald.engine.urls import require_public_url
from herald.store import accounts as account_store
from herald.store import endpoints as endpoint_store
from herald.store import quotas, users
from herald.store.types import utcnow

BodyT = TypeVar("BodyT", bound=BaseModel)


class ChannelContext:
    """One request to one channel route; use as ``async with ChannelContext(...) as request``."""

    def __init__(
        self,
        herald: Herald,
        channel: Channel,
        *,
        user_id: str | None = None,
        body: BaseModel | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> None:
        self.herald = herald
        self.channel = channel
        self._user_id = user_id
        self._body = body
        self._path_params = dict(path_params or {})
        self._stack = AsyncExitStack()
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> ChannelContext:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        self._conn = None
        return await self._stack.__aexit__(exc_type, exc, tb)

    # -- transactions --------------------------------------------------------------------------

    @property
    def write_connection(self) -> AsyncConnection | None:
        """The request's write transaction, if anything was written yet."""
        return self._conn

    async def writer(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._stack.enter_async_context(self.herald.db.write())
        return self._conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:  # read what this request wrote
            yield self._conn
            return
        async with self.herald.db.read() as conn:
            yield conn

    # -- ChannelRequest ------------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        if self._user_id is None:
            raise RuntimeError(f"{self.channel.name}: this route has no user (no user token, no {{user_id}})")
        return self._user_id

    @property
    def path_params(self) -> Mapping[str, str]:
        return self._path_params

    def body_as(self, model: type[BodyT]) -> BodyT:
        if not isinstance(self._body, model):
            raise TypeError(f"the route's body is {type(self._body).__name__}, not {model.__name__}")
        return self._body

    @property
    def endpoints(self) -> UserEndpoints:
        return UserEndpoints(self, self.user_id)

    @property
    def grants(self) -> UserGrants:
        return UserGrants(self, self.user_id)

    async def accounts(self) -> list[PublicAccount]:
        secrets = set(self.channel.Settings.secret_fields())
        async with self.reader() as conn:
            rows = await account_store.list_accounts(conn, self.herald.box, self.channel.name)
        return [
            PublicAccount(
                name=row["name"],
                default=bool(row["default"]),
                config={k: v for k, v in (row["config"] or {}).items() if k not in secrets},
            )
            for row in rows
        ]

    @property
    def allow_private_urls(self) -> bool:
        return bool(self.herald.settings.allow_private_urls)

    async def require_public_url(self, url: str, *, field: str) -> None:
        await require_public_url(url, field=field, allow_private=self.allow_private_urls)


class UserEndpoints:
    """``ChannelEndpoints`` of one user and one channel."""

    def __init__(self, context: ChannelContext, user_id: str) -> None:
        self._context = context
        self._channel = context.channel.name
        self._user_id = user_id

    async def save(self, address: str, data: dict[str, Any]) -> bool:
        conn = await self._context.writer()
        return await endpoint_store.save_endpoint(conn, self._channel, self._user_id, address, data, utcnow())

    async def delete(self, address: str) -> bool:
        conn = await self._context.writer()
        return await endpoint_store.delete_endpoint(conn, self._channel, self._user_id, address)

    async def registered(self) -> list[Endpoint]:
        async with self._context.reader() as conn:
            found = await endpoint_store.endpoints_of(conn, self._channel, [self._user_id])
        return found.get(self._user_id, [])


class UserGrants:
    """``ChannelGrants`` of one user, keys in the channel's namespace."""

    def __init__(self, context: ChannelContext, user_id: str) -> None:
        self._context = context
        self._prefix = f"{context.channel.name}:"
        self._user_id = user_id

    def _check(self, key: str) -> None:
        if not key.startswith(self._prefix) or len(key) == len(self._prefix):
            raise ValueError(f"a grant key of this channel starts with {self._prefix!r}, not {key!r}")

    async def grant(self, key: str, count: int) -> int:
        self._check(key)
        conn = await self._context.writer()
        await users.ensure_users(conn, [self._user_id])
        return await quotas.grant(conn, self._user_id, key, count, utcnow())

    async def remaining(self, key: str) -> int:
        self._check(key)
        async with self._context.reader() as conn:
            return await quotas.remaining(conn, self._user_id, key)
