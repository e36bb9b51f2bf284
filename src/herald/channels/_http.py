"""What every HTTP provider channel shares: one pooled client per channel instance.

httpx is imported on a channel's first send, never at start: with the CLI libraries its own
``httpx.main`` pulls in (rich, pygments), it costs ~5 MiB and ~60 ms that a server whose
channels are only the inbox would never use. Channel modules import it the same way (inside the
functions that send, and under ``TYPE_CHECKING`` for annotations).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from herald.channels.base import Channel
from herald.core.backoff import MAX_RETRY_AFTER_SECONDS
from herald.core.errors import RetryableError, TerminalError

if TYPE_CHECKING:
    import httpx

# delta-seconds is 1*DIGIT (RFC 9110 §10.2.3); a fraction is tolerated, a sign or an exponent is not.
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?", re.ASCII)


def pool_limits() -> httpx.Limits:
    """The limits of every channel's pool: keep-alive for as many connections as a worker has sends
    in flight (httpx keeps 20 by default: above that, every extra request opened and closed its own
    connection)."""
    import httpx  # on the first send (see the module's docstring)

    return httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30)


class HttpChannel(Channel):
    """A channel that talks HTTP. The client is created lazily, so its pool binds to the running
    event loop, is shared by every account of the channel, and never follows redirects: a redirect
    would carry access tokens, keys or signed payloads somewhere the admin did not configure."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # on the first send (see the module's docstring)

            self._client = httpx.AsyncClient(follow_redirects=False, limits=pool_limits())
        return self._client

    async def post_json(
        self,
        url: str,
        body: Any,
        *,
        timeout: float,  # noqa: ASYNC109 - the provider account's httpx timeout, per request
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` as UTF-8 JSON; a transport failure (refused, reset, timeout) is retryable,
        a body that cannot be UTF-8 is terminal (``encode_json_body``)."""
        import httpx  # loaded by self._http() below; bound here for the except clause

        content = encode_json_body(body)
        try:
            return await self._http().post(
                url,
                params=params,
                content=content,
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


def encode_json_body(
    body: Any, *, separators: tuple[str, str] | None = None, default: Callable[[Any], Any] | None = None
) -> bytes:
    """``body`` as UTF-8 JSON bytes (not ``\\u``-escaped), or ``TerminalError``.

    A lone surrogate (``"\\ud800"``, which JSON input may carry) has no UTF-8 form: the same
    payload would fail on every retry, so it is refused for good, saying where.
    """
    text = json.dumps(body, ensure_ascii=False, separators=separators, default=default)
    return encode_utf8(text)


def encode_utf8(text: str, what: str = "payload") -> bytes:
    """``text`` as UTF-8, or ``TerminalError`` naming the character that has no UTF-8 form."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        around = text[max(0, exc.start - 20) : exc.end + 20]
        raise TerminalError(
            f"{what} is not valid UTF-8: {text[exc.start : exc.end]!r} at character {exc.start} (in {around!r})"
        ) from exc


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date, at most
    ``MAX_RETRY_AFTER_SECONDS``; ``None`` if absent or garbled (negative, NaN, not a number or a
    date). A date in the past is 0. Never raises: the header comes from whoever answered."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)  # a long run of digits is inf, not an error
    else:
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is None:  # HTTP-dates are GMT by definition
                when = when.replace(tzinfo=UTC)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)
