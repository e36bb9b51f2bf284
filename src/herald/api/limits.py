"""Refusing request bodies over the limit before they are read into memory."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from herald.core.errors import Invalid
from herald.core.inputs import BadInput, check_json, text_problem

MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 problem+json when Content-Length or the streamed body exceeds the limit."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False
        exceeded = False

        async def limited_receive() -> Any:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if exceeded:
                # FastAPI turns a failed body read into its own 400; the client needs to hear 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Request body too large",
                "status": 413,
                "detail": f"request bodies are limited to {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _check_url(request: Request) -> None:
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    bad = [(name, problem) for name, value in params if (problem := text_problem(str(value))) is not None]
    if bad:
        raise Invalid(bad)


async def refuse_nul_in_url(request: Request) -> None:
    """422 for a NUL character or a lone surrogate in a path or query parameter.

    (Kept for the routers that name it; ``refuse_bad_input`` does this for every route.)
    """
    _check_url(request)


async def refuse_bad_input(request: Request) -> None:
    """The door, for every route: 422 naming the field for text that is not Unicode scalar values
    (a lone surrogate, NUL) anywhere in the path, the query or a JSON body, for a body nested deeper
    than MAX_DEPTH, and for objects or arrays inside it larger than MAX_ITEMS.

    FastAPI has parsed the body before dependencies run, and Starlette keeps the parsed value, so
    ``request.json()`` costs one walk, not a second parse. Routes that read their body raw (provider
    delivery reports) are left to their own parser.
    """
    _check_url(request)
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None or not await request.body():
        return
    try:
        body = await request.json()
    except ValueError:  # not JSON (FastAPI has already answered for a JSON body it could not parse)
        return
    try:
        check_json(body)
    except BadInput as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc
