"""RFC 9457 problem+json for every error, naming the field for bad input."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.api.limits import MAX_BODY_BYTES, BodyTooLarge
from herald.core.cursor import BadCursor
from herald.core.errors import Conflict, Invalid, NotFound
from herald.core.inputs import printable
from herald.store.unavailable import database_unavailable

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5
"""What a 503 for an unavailable database asks the client to wait: long enough for a failover or
a restart, short enough that a retrying client notices recovery soon."""

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": printable(detail),
    }
    if errors is not None:
        # a field may be a key the client sent, lone surrogate and all: the answer must still encode
        body["errors"] = [{name: printable(text) for name, text in error.items()} for error in errors]
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # pydantic names union branches ("str", "function-after[...]"): not a field a client sent
    parts = [p for p in parts if not (p in ("str", "dict", "list", "int") or "[" in p)]
    return ".".join(parts) or str(loc[0] if loc else "body")


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    status = 422
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            status = 400
            errors.append(
                {"field": "body", "message": f"malformed JSON: {err.get('ctx', {}).get('error', '')}".strip()}
            )
            continue
        loc = tuple(err.get("loc", ()))
        where = loc[0] if loc else "body"
        field = _field(loc)
        if where == "query" and field:
            field = f"query.{field}" if not field.startswith("query") else field
        errors.append({"field": field, "message": err.get("msg", "invalid")})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(status, detail, errors=errors)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation(request, exc)

    @app.exception_handler(Invalid)
    async def _on_invalid(request: Request, exc: Invalid) -> JSONResponse:
        errors = [{"field": f, "message": m} for f, m in exc.errors]
        return problem(exc.status, str(exc), title=exc.title, errors=errors)

    @app.exception_handler(BadCursor)
    async def _on_cursor(request: Request, exc: BadCursor) -> JSONResponse:
        return problem(
            400, "cursor is not valid", errors=[{"field": "cursor", "message": "not a cursor this API gave"}]
        )

    @app.exception_handler(NotFound)
    async def _on_not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, f"{exc.what} not found")

    @app.exception_handler(Conflict)
    async def _on_conflict(request: Request, exc: Conflict) -> JSONResponse:
        return problem(409, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(BodyTooLarge)
    async def _on_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return problem(413, f"request bodies are limited to {MAX_BODY_BYTES} bytes")

    # Registered for these classes rather than left to the catch-all below: Starlette answers the
    # catch-all and then re-raises, and uvicorn closes the connection; these answer and keep it.
    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(OSError)
    async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return problem(
                503,
                "the database is unavailable; retry in a few seconds",
                title="Service unavailable",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged")

    @app.exception_handler(Exception)
    async def _on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged")
