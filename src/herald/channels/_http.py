"""What every HTTP provider channel shares: one pooled client per channel instance."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from herald.channels.base import Channel
from herald.core.errors import RetryableError


class HttpChannel(Channel):
    """A channel that talks HTTP. The client is created lazily, so its pool binds to the running
    event loop, is shared by every account of the channel, and never follows redirects: a redirect
    would carry access tokens, keys or signed payloads somewhere the admin did not configure."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def post_json(
        self,
        url: str,
        body: Any,
        *,
        timeout: float,  # noqa: ASYNC109 - the provider account's httpx timeout, per request
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` as UTF-8 JSON; a transport failure (refused, reset, timeout) is retryable."""
        try:
            return await self._http().post(
                url,
                params=params,
                content=json.dumps(body, ensure_ascii=False).encode(),
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def http_base_url(value: str) -> str:
    """A provider base URL setting: absolute http(s), no trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be an absolute http:// or https:// URL")
    return value.rstrip("/")
