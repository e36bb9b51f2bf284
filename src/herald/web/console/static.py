"""``GET /console/static/{name}``: the console's own stylesheet and script, read from the package
once, with a strong ETag. Pages link them as ``…?v=<hash>``, so a new version is fetched at once
and an unchanged one is served from the browser's cache (a year, immutable)."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request, Response

from herald.web.widget import StaticAsset, load_asset

ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console-templates.js": "text/javascript; charset=utf-8",
}
PREFIX = "/console/static/"

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> StaticAsset:
    return load_asset(name)


def asset_url(name: str) -> str:
    """The URL of an asset, versioned by its content."""
    return f"{PREFIX}{name}?v={_asset(name).etag.strip(chr(34))[:12]}"


@router.api_route(PREFIX + "{name}", methods=["GET", "HEAD"])
async def console_asset(name: str, request: Request) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    asset = _asset(name)
    versioned = request.query_params.get("v") == asset.etag.strip('"')[:12]
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    return Response(body, media_type=media_type, headers=headers)
