"""create_app(settings): the routers, error handling, and in embedded mode the worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from herald import __version__
from herald.api import (
    accounts,
    announcements,
    callbacks,
    channel_routes,
    direct,
    event_webhooks,
    keys,
    me,
    notifications,
    ops,
    problems,
    types,
    users,
)
from herald.api import actions as actions_api
from herald.api import preferences as preferences_api
from herald.api import realtime as realtime_api
from herald.api import schedules as schedules_api
from herald.api import unsubscribe as unsubscribe_api
from herald.api.auth import ApiKeyCache, UserTokenCache
from herald.api.content_type import JsonContentType
from herald.api.hot import HotInbox
from herald.api.limits import BodySizeLimit, refuse_bad_input
from herald.api.openapi import install_docs, install_openapi
from herald.config import Settings
from herald.engine.service import Herald
from herald.engine.worker import Worker
from herald.logs import install_redaction
from herald.web import console as web_console
from herald.web.widget import widget_router

log = logging.getLogger(__name__)


def operation_id(route: APIRoute) -> str:
    """The handler's name (``put_user``, ``list_inbox``): what a generated client calls the method."""
    return route.name


def create_app(settings: Settings | None = None, *, run_worker: bool | None = None, demo: bool = False) -> FastAPI:
    """``demo`` (``herald serve --demo``) adds the ``/demo`` page; it exists in no other mode."""
    settings = settings or Settings()
    install_redaction()  # before anything logs: no secret in any log line (docs/operations.md)
    herald = Herald(settings)
    with_worker = settings.embedded_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await herald.migrate()
        # listening on the realtime backplane before serving: a stream opened now misses nothing
        stop_realtime = await realtime_api.start(app)
        # what start-up built (modules, routes, models) lives as long as the process: out of the
        # collector's full passes, which otherwise walk it again and again under load (+10 % inbox reads)
        gc.freeze()
        worker_task = None
        worker = None
        if with_worker:
            worker = Worker(herald)
            worker_task = asyncio.create_task(worker.run(), name="herald-worker")
        try:
            yield
        finally:
            stop_realtime()
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
        description=(
            "Self-hosted notification platform (消息通知系统). Server-side endpoints take an API key,"
            " `/v1/me/…` a user token, both as `Authorization: Bearer …`. Errors are RFC 9457"
            " `application/problem+json`."
        ),
        lifespan=lifespan,
        dependencies=[Depends(refuse_bad_input)],  # the door: text, nesting and sizes of every request
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        generate_unique_id_function=operation_id,
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
    app.include_router(schedules_api.router)  # /v1/schedules (docs/rules.md, Scheduling)
    app.include_router(accounts.router)
    app.include_router(keys.router)
    app.include_router(event_webhooks.router)
    app.include_router(callbacks.router)
    app.include_router(me.router)
    app.include_router(preferences_api.router)  # /v1/me/preferences, /v1/users/{id}/preferences
    app.include_router(unsubscribe_api.router)  # /unsubscribe/{token}: one-click, no login (docs/preferences.md)
    app.include_router(direct.router)  # /v1/me/messages, /conversations, /blocks (docs/direct-messages.md)
    app.include_router(direct.admin_router)
    app.include_router(actions_api.router)  # POST /v1/me/inbox/{item_id}/actions/{action_id}
    realtime_api.install(app, herald)  # GET /v1/me/events (SSE), /v1/me/ws (WebSocket)
    app.include_router(channel_routes.channel_router(herald.channels))
    app.include_router(widget_router())  # /static/herald-inbox.js
    web_console.install(app)  # /console: the admin console (docs/console.md)
    if demo:  # imported only for it
        from herald.web import demo as web_demo

        app.include_router(web_demo.router)
    install_docs(app)
    install_openapi(app)
    # innermost: GET /v1/me/inbox and /counts answered before routing when plainly valid (api/hot.py)
    app.state.hot_inbox = {"served": 0, "passed": 0}
    app.add_middleware(HotInbox, herald=herald, tokens=app.state.user_tokens, stats=app.state.hot_inbox)
    app.add_middleware(JsonContentType)
    app.add_middleware(BodySizeLimit)  # a body over the limit is 413 whatever its type
    if settings.cors_origins:  # outermost: every answer, errors included, carries the CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,  # bearer tokens, never cookies: and never a wildcard with credentials
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            max_age=600,
        )
    return app
