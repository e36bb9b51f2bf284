"""415 for a request body that is not sent as JSON, naming the Content-Type it needs.

Without this, ``curl -d '{...}'`` (which sends ``application/x-www-form-urlencoded``) got a 422
"Input should be a valid dictionary" about a body that was valid JSON all along.
"""

from __future__ import annotations

import json
from typing import Any

JSON_TYPES = ("application/json",)
# Providers post their delivery reports in their own formats (form fields, XML, ...).
EXEMPT_PREFIXES = ("/v1/callbacks/",)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


class JsonContentType:
    """ASGI middleware: a /v1 request with a body must say ``Content-Type: application/json``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not scope["path"].startswith("/v1/")
            or scope["path"].startswith(EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1").strip()
        if is_json(content_type):
            await self.app(scope, receive, send)
            return
        if content_type:
            detail = f"the request body must be JSON sent with Content-Type: application/json, not '{content_type}'"
        else:
            detail = "the request body has no Content-Type header: send it with Content-Type: application/json"
        await _drain(receive)  # so the connection stays usable for the client's next request
        await _refuse(send, detail)


async def _drain(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _refuse(send: Any, detail: str) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Unsupported media type",
            "status": 415,
            "detail": detail,
            "errors": [{"field": "Content-Type", "message": "must be application/json"}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 415,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"accept", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
