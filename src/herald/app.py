"""create_app(settings): the routers, error handling, and in embedded mode the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from herald import __version__
from herald.api import (
    accounts,
    announcements,
    callbacks,
    channel_routes,
    event_webhooks,
    keys,
    me,
    notifications,
    ops,
    problems,
    types,
    users,
)
from herald.api.auth import ApiKeyCache, UserTokenCache
from herald.api.limits import BodySizeLimit
from herald.config import Settings
from herald.engine.service import Herald
from herald.engine.worker import Worker

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, run_worker: bool | None = None) -> FastAPI:
    settings = settings or Settings()
    herald = Herald(settings)
    with_worker = settings.embedded_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await herald.migrate()
        worker_task = None
        worker = None
        if with_worker:
            worker = Worker(herald)
            worker_task = asyncio.create_task(worker.run(), name="herald-worker")
        try:
            yield
        finally:
            if worker is not None and worker_task is not None:
                worker.stop()
                try:
                    await asyncio.wait_for(worker_task, timeout=30)
                except TimeoutError:
                    worker_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker_task
            await herald.close()

    app = FastAPI(
        title="Herald",
        version=__version__,
        description="Self-hosted notification platform (消息通知系统). See API.md for the contract.",
        lifespan=lifespan,
    )
    app.state.herald = herald
    app.state.api_keys = ApiKeyCache()
    app.state.user_tokens = UserTokenCache()
    problems.install(app)
    app.include_router(ops.router)
    app.include_router(users.router)
    app.include_router(types.router)
    app.include_router(notifications.router)
    app.include_router(announcements.router)
    app.include_router(accounts.router)
    app.include_router(keys.router)
    app.include_router(event_webhooks.router)
    app.include_router(callbacks.router)
    app.include_router(me.router)
    app.include_router(channel_routes.channel_router(herald.channels))
    app.add_middleware(BodySizeLimit)
    return app
