"""What every HTTP provider channel shares: one pooled client per channel instance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from herald.channels.base import Channel
from herald.core.errors import RetryableError, TerminalError


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


def provider_answer(response: httpx.Response, provider: str, code_keys: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The JSON answer of a provider that reports outcomes with a code in the body, and which of
    ``code_keys`` holds it. HTTP 429/5xx are retryable (Retry-After honoured); a 2xx without a code
    is retryable (a proxy or a hiccup, not the provider's verdict); another status without one is
    terminal."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise RetryableError(
            f"{provider} answered HTTP {status}",
            code=str(status),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    key = next((k for k in code_keys if isinstance(answer, dict) and k in answer), None)
    if not isinstance(answer, dict) or key is None:
        if 200 <= status < 300:
            raise RetryableError(f"{provider} answered HTTP {status} without a code: {response.text[:200]}")
        raise TerminalError(f"{provider} answered HTTP {status}: {response.text[:200]}", code=str(status))
    return answer, key


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; ``None`` if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
