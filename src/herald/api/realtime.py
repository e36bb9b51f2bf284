"""The realtime endpoints: ``GET /v1/me/events`` (Server-Sent Events) and ``/v1/me/ws`` (WebSocket).

Both authenticate before anything is sent (401 problem+json, for the WebSocket as the answer to the
upgrade), subscribe the connection in this process's hub, read what the client starts with (the replay
since ``Last-Event-ID`` / ``?since=``, or the counts; a database that cannot be read is a 503 here, not
a broken stream), then hand the connection to ``engine.streams.Session``. The wire format is in
docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from herald.api.openapi import RealtimeEvent
from herald.api.problems import RETRY_AFTER_SECONDS, problem
from herald.api.realtime_auth import CurrentStreamUser, bearer_or_query, verify_stream_token
from herald.api.views import inbox_item_view
from herald.core.errors import Invalid
from herald.engine.service import Herald
from herald.engine.streams import LiveFeed, Session
from herald.realtime.hub import Event, Hub, TooManyStreams
from herald.realtime.ids import BadEventId, event_id_time
from herald.store.unavailable import database_unavailable

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/me", tags=["me"])
EVENTS_PATH, WS_PATH = "/v1/me/events", "/v1/me/ws"
RETRY_MILLISECONDS = 3000
WS_TOKEN_EXPIRED = 4001
WS_GOING_AWAY = 1001
_SINCE_HELP = "Resume after this event id (or inbox item id): what was missed since is replayed from the store."


def _feed(app: Any) -> LiveFeed:
    feed: LiveFeed = app.state.live_feed
    return feed


def resume_point(since: str | None, last_event_id: str | None) -> tuple[datetime | None, bool]:
    """(when, resume?): ``Last-Event-ID`` (the browser's own reconnect) wins over ``?since=``.
    A header the server cannot read resumes from an unknown point (``sync.required``): a browser
    must never be stuck reconnecting with it; a bad ``?since=`` is the client's bug: 422."""
    if last_event_id:
        try:
            return event_id_time(last_event_id.strip()), True
        except BadEventId:
            return None, True
    if since:
        try:
            return event_id_time(since), True
        except BadEventId:
            raise Invalid([("since", "is not an event id or an inbox item id")]) from None
    return None, False


def _too_many(user_id: str, hub: Hub) -> HTTPException:
    return HTTPException(
        429, f"this user already has {hub.max_streams_per_user} realtime streams open on this server (close one)"
    )


class EventStreamResponse(Response):
    """``text/event-stream`` written straight from the session: no body iterator, no task group
    per connection; one small task waits for the client to go away."""

    media_type = "text/event-stream"

    def __init__(self, session: Session) -> None:  # no call to Response.__init__: it would set Content-Length
        self.session = session
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.session.stream
        assert stream is not None

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            stream.close()

        async def write(event: Event) -> None:
            await send({"type": "http.response.body", "body": event.sse(), "more_body": True})

        watcher = asyncio.create_task(client_gone())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            retry = f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            await send({"type": "http.response.body", "body": retry, "more_body": True})
            await self.session.run(write)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write
            pass
        finally:
            watcher.cancel()
            self.session.feed.hub.close(stream)


@router.get(
    "/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {"model": RealtimeEvent, "description": "The event stream (`text/event-stream`): docs/realtime.md"},
        429: {"description": "Too many streams open for this user"},
    },
    response_model=None,
)
async def event_stream(
    request: Request,
    user: CurrentStreamUser,
    since: Annotated[str | None, Query(max_length=64, description=_SINCE_HELP)] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64, description="Sent by EventSource on reconnect")
    ] = None,
) -> Response:
    """Server-Sent Events: the user's inbox, counts, announcements and banners as they change."""
    when, resume = resume_point(since, last_event_id)
    feed = _feed(request.app)
    session = Session(feed, user.user_id, expires_at=user.expires_at)
    try:
        await session.open(when, resume=resume)
    except TooManyStreams:
        raise _too_many(user.user_id, feed.hub) from None
    return EventStreamResponse(session)


# -- WebSocket --------------------------------------------------------------------------------------


async def _deny(websocket: WebSocket, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """Refuse the upgrade with a problem+json answer (or, where the server cannot send one, close 1008)."""
    try:
        await websocket.send_denial_response(problem(status, detail, headers=headers))
    except RuntimeError:
        await websocket.close(code=1008, reason=detail[:120])


async def _read_client(websocket: WebSocket, session: Session, herald: Herald) -> None:
    """Client frames: ``{"type": "token", "token": …}`` extends the stream; a disconnect closes it."""
    stream = session.stream
    assert stream is not None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                frame = json.loads(message.get("text") or message.get("bytes") or b"")
            except ValueError:
                continue
            if isinstance(frame, dict) and frame.get("type") == "token":
                try:
                    fresh = verify_stream_token(herald, str(frame.get("token") or ""))
                except HTTPException:
                    session.expire()
                    continue
                if fresh.user_id != session.user_id:  # a stream never changes hands
                    session.expire()
                else:
                    session.extend(fresh.expires_at)
    except Exception:  # noqa: S110 (the socket is gone: the stream closes below)
        pass
    finally:
        stream.close()


async def websocket_events(websocket: WebSocket) -> None:
    herald: Herald = websocket.app.state.herald
    feed = _feed(websocket.app)
    try:
        user = verify_stream_token(
            herald, bearer_or_query(websocket.headers.get("authorization"), websocket.query_params.get("token"))
        )
        when, resume = resume_point(websocket.query_params.get("since"), None)
        session = Session(feed, user.user_id, expires_at=user.expires_at)
        await session.open(when, resume=resume)
    except HTTPException as exc:
        await _deny(websocket, exc.status_code, str(exc.detail), dict(exc.headers or {}))
        return
    except Invalid as exc:
        await _deny(websocket, 422, "; ".join(f"{field}: {message}" for field, message in exc.errors))
        return
    except TooManyStreams:
        refused = _too_many(user.user_id, feed.hub)
        await _deny(websocket, refused.status_code, str(refused.detail))
        return
    except (SQLAlchemyError, OSError) as exc:
        if not database_unavailable(exc):
            raise
        await _deny(websocket, 503, "the database is unreachable", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        return
    await websocket.accept()
    reader = asyncio.create_task(_read_client(websocket, session, herald))
    code = WS_GOING_AWAY
    try:
        if await session.run(lambda event: websocket.send_text(event.json())) == Session.EXPIRED:
            code = WS_TOKEN_EXPIRED
    except Exception:  # noqa: S110 (the client went away mid-send)
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason="token expired" if code == WS_TOKEN_EXPIRED else "")


# -- wiring -----------------------------------------------------------------------------------------


def install(app: FastAPI, herald: Herald) -> None:
    """The SSE route (in the OpenAPI document) and the WebSocket route (outside it: OpenAPI has no
    WebSocket); the feed that turns backplane messages into events for the streams held here."""
    app.state.live_feed = LiveFeed(herald, inbox_item_view)
    app.include_router(router)
    app.router.routes.append(WebSocketRoute(WS_PATH, websocket_events, name="websocket_events"))


async def start(app: FastAPI) -> Callable[[], None]:
    """Listen on the backplane (returns once subscribed); returns what undoes ``_close_streams_on_exit``."""
    feed = _feed(app)
    await feed.herald.realtime.start(feed.handle)
    return _close_streams_on_exit(feed.hub)


def _close_streams_on_exit(hub: Hub) -> Callable[[], None]:
    """On SIGINT/SIGTERM, end every open stream before uvicorn waits for connections to finish: an SSE
    response never finishes by itself, and uvicorn would wait for it forever. Only uvicorn's own
    handlers are chained (nothing is installed under a test runner or another server)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    chained: dict[signal.Signals, Callable[[int, FrameType | None], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        owner = getattr(previous, "__self__", None)
        if callable(previous) and type(owner).__module__.startswith("uvicorn"):
            chained[sig] = previous

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.close_all)
        chained[signal.Signals(sig)](sig, frame)

    for sig in chained:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, previous in chained.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return restore
