"""``GET /static/herald-inbox.js``: the inbox widget, read from the installed package.

One file, served with a strong ETag (304 on a match), an hour of caching, and gzip when the browser
takes it. It is public code without credentials, so any page may load it: as a classic script with
no CORS at all, or as a module script, which needs ``Access-Control-Allow-Origin``.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib.resources import files

from fastapi import APIRouter, Request, Response

WIDGET_FILE = "herald-inbox.js"
WIDGET_PATH = f"/static/{WIDGET_FILE}"
CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class StaticAsset:
    body: bytes
    gzipped: bytes
    etag: str
    """Of the plain body; the gzipped representation's is ``etag`` with ``-gz`` inside the quotes."""

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


def load_asset(name: str) -> StaticAsset:
    body = files("herald.web").joinpath("static", name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return StaticAsset(body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0), etag=etag)


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip()
            try:
                return not params or float(quality) > 0
            except ValueError:
                return False
    return False


def widget_router() -> APIRouter:
    """The route, with the file read once now: a deploy that replaces the package restarts the process."""
    asset = load_asset(WIDGET_FILE)
    router = APIRouter(include_in_schema=False)

    @router.api_route(WIDGET_PATH, methods=["GET", "HEAD"])
    async def herald_inbox_js(request: Request) -> Response:
        zipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        etag = asset.gzip_etag if zipped else asset.etag
        headers = {
            "Cache-Control": CACHE_CONTROL,
            "ETag": etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        wanted = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
        if etag in wanted or "*" in wanted:
            return Response(status_code=304, headers=headers)
        if zipped:
            headers["Content-Encoding"] = "gzip"
        body = asset.gzipped if zipped else asset.body
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            body = b""
        return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)

    return router
