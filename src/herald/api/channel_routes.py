"""Every channel's own routes (``Channel.routes()``) as FastAPI routes, mounted at app creation.

A channel declares a ``ChannelRoute`` (method, path, auth, body model, handler); this module gives it
what every Herald route has: the auth dependency (public, user token, API key scope), the request
body as an OpenAPI-documented model, NUL characters refused in the URL and the body (the 1 MiB limit
is the app's middleware), problem+json errors, and ``Idempotency-Key`` on idempotent POSTs. The
handler receives a ``ChannelRequest`` (``herald.engine.channel_context``) and never sees the store.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from herald.api.auth import HeraldDep, current_user, require_scope
from herald.api.idempotency import Store, idempotent
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import JsonObject, documented
from herald.api.schemas import nul_path
from herald.channels.base import Channel, ChannelRequest, ChannelRoute
from herald.core.errors import Invalid
from herald.engine.channel_context import ChannelContext
from herald.engine.service import Herald
from herald.store.apikeys import ApiKey

PATH_PARAM = re.compile(r"{([^{}]*)}")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
RESERVED_PARAMS = frozenset({"request", "herald", "caller", "body"})
AUTHS = ("public", "user", "send", "read", "admin")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PathText = Annotated[str, Path(min_length=1, max_length=200)]


def channel_router(channels: Mapping[str, Channel]) -> APIRouter:
    """One router holding every route the given channels declare; ValueError for a bad declaration."""
    router = APIRouter(dependencies=[Depends(refuse_nul_in_url)])
    owners: dict[tuple[str, str], str] = {}
    for channel in channels.values():
        for route in channel.routes():
            check_route(channel, route)
            key = (route.method, PATH_PARAM.sub("{}", route.path))
            if key in owners:
                raise ValueError(f"channel {channel.name}: {route.method} {route.path} is already {owners[key]}'s")
            owners[key] = channel.name
            router.add_api_route(
                route.path,
                endpoint_for(channel, route),
                methods=[route.method],
                status_code=route.status_code,
                **documented(  # a channel's handler may raise NotFound or Conflict
                    None if route.status_code == 204 else JsonObject,
                    route.status_code,
                    errors=(404, 409),
                    idempotent=route.idempotent,
                ),
                summary=route.summary or None,
                description=inspect.getdoc(route.handler) or "",
                tags=["channels"],
                name=getattr(route.handler, "__name__", None),
            )
    return router


def check_route(channel: Channel, route: ChannelRoute) -> None:
    """Refuse, at app creation, a route that could break an API rule (a user token reaching another
    user's data, an idempotent route without a caller to scope it, ...)."""

    def bad(why: str) -> ValueError:
        return ValueError(f"channel {channel.name}: route {route.method} {route.path}: {why}")

    params = PATH_PARAM.findall(route.path)
    if route.method not in METHODS:
        raise bad(f"the method must be one of {', '.join(METHODS)}")
    if route.auth not in AUTHS:
        raise bad(f"auth must be one of {', '.join(AUTHS)}")
    if not route.path.startswith("/v1/") or "//" in route.path or route.path.endswith("/"):
        raise bad("the path must be absolute under /v1/, without empty segments")
    for name in params:
        if not IDENTIFIER.match(name) or name in RESERVED_PARAMS:
            raise bad(f"bad path parameter {{{name}}}")
    if len(set(params)) != len(params):
        raise bad("a path parameter appears twice")
    if route.auth == "user" and (not route.path.startswith("/v1/me/") or "user_id" in params):
        raise bad("user-token routes live under /v1/me/ and take no {user_id}: they reach the caller's data only")
    if route.auth != "user" and route.path.startswith("/v1/me/"):
        raise bad("/v1/me/ is for user-token routes")
    if route.body is not None and route.method == "GET":
        raise bad("a GET takes no body")
    if route.idempotent and (route.method != "POST" or route.auth == "public" or route.status_code == 204):
        raise bad("only a POST answering a body to a known caller can be idempotent")


def endpoint_for(channel: Channel, route: ChannelRoute) -> Callable[..., Awaitable[Response]]:
    params = PATH_PARAM.findall(route.path)

    async def endpoint(request: Request, herald: Herald, **values: Any) -> Response:
        caller: ApiKey | str | None = values.get("caller")
        body: BaseModel | None = values.get("body")
        path_params = {name: str(values[name]) for name in params}
        if body is not None:
            where = nul_path(body.model_dump(mode="json", by_alias=True))
            if where is not None:
                raise Invalid([(where or "body", "contains a NUL character")])
        user_id = caller if isinstance(caller, str) else path_params.get("user_id")

        async def run(store: Store | None) -> tuple[int, Any]:
            async with ChannelContext(herald, channel, user_id=user_id, body=body, path_params=path_params) as ctx:
                channel_request: ChannelRequest = ctx
                answer = await route.handler(channel_request)
                if store is not None and ctx.write_connection is not None:
                    await store(ctx.write_connection, route.status_code, answer)  # with what it wrote
            return route.status_code, answer

        if route.idempotent:
            scope = caller.id if isinstance(caller, ApiKey) else f"user:{caller}"
            return await idempotent(request, herald, scope, run)
        status, answer = await run(None)
        if answer is None or status == 204:
            return Response(status_code=status)
        return JSONResponse(answer, status_code=status)

    signature = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter("herald", inspect.Parameter.KEYWORD_ONLY, annotation=HeraldDep),
    ]
    if route.auth == "user":
        caller = Annotated[str, Depends(current_user)]
        signature.append(inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=caller))
    elif route.auth != "public":
        key = Annotated[ApiKey, Depends(require_scope(route.auth))]
        signature.append(inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=key))
    signature += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=PathText) for name in params]
    if route.body is not None:
        model = Annotated[route.body, Body()]  # type: ignore[name-defined]
        signature.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=model))
    endpoint.__signature__ = inspect.Signature(signature, return_annotation=Response)  # type: ignore[attr-defined]
    # FastAPI's operation id is this name plus the path and method: the handler's name keeps it stable.
    endpoint.__name__ = getattr(route.handler, "__name__", f"{channel.name}_route")
    return endpoint
