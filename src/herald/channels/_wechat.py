"""What the WeChat channels share: account settings, the stable access token and the token-refresh retry.

Per WeChat's "获取稳定版接口调用凭据" (getStableAccessToken): ``POST {base_url}/cgi-bin/stable_token`` with
``{"grant_type": "client_credential", "appid", "secret", "force_refresh": false}`` answers
``{"access_token", "expires_in"}`` (at most 7200 s). In the default mode repeated calls within the
validity return the same token, and the platform renews it 5 minutes before it expires; the forced
mode invalidates the token for every holder and is limited to 20 calls a day, 30 s apart, so Herald
never forces. The token lives in the engine's ``SharedCache`` so every process uses one token.

This module starts with "_" so channel discovery skips it; ``WeChatChannel`` has no ``name`` either.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from herald.channels._http import HttpChannel, encode_json_body, http_base_url, parse_retry_after
from herald.channels.base import ChannelSettings, SendResult, SharedCache
from herald.core.errors import RetryableError, TerminalError

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
TOKEN_PATH = "/cgi-bin/stable_token"  # noqa: S105 - a path, not a secret
DEFAULT_EXPIRES_IN = 7200
REFRESH_MARGIN_SECONDS = 300
"""Refresh this long before expiry: WeChat hands out the next token in the last 5 minutes."""

TOKEN_INVALID = frozenset({40001, 40014, 42001})
"""The send's token was invalid (40001, 40014) or expired (42001): refetch once and retry."""
TOKEN_TERMINAL = frozenset({40013, 40125, 40164, 41002, 41004, 40002})
"""Bad AppID, bad AppSecret, caller IP not whitelisted, missing appid/secret, bad grant_type."""
SYSTEM_BUSY = -1
DAILY_QUOTA = 45009  # reach max api daily quota limit: resets at midnight (Beijing time)
MINUTE_QUOTA = 45011  # api minute-quota reach limit, retry next minute
QUOTA_RETRY_SECONDS = {DAILY_QUOTA: 3600.0, MINUTE_QUOTA: 60.0}

_KEYWORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def token_cache_key(app_id: str) -> str:
    return f"wechat:token:{app_id}"


def token_cache_ttl(expires_in: float) -> float:
    """How long to keep a token: until ``REFRESH_MARGIN_SECONDS`` before expiry (half its life if shorter)."""
    if expires_in > 2 * REFRESH_MARGIN_SECONDS:
        return expires_in - REFRESH_MARGIN_SECONDS
    return max(expires_in / 2, 0.001)


class WeChatAppSettings(ChannelSettings):
    app_id: str = Field(description="AppID (开发者ID), wx…, from the WeChat console's development settings.")
    app_secret: SecretStr = Field(description="AppSecret (开发者密码); write-only.")
    base_url: str = Field(DEFAULT_BASE_URL, description="API origin; change only to point at a test fake or proxy.")
    timeout: float = Field(10, gt=0, le=120, description="Seconds allowed for each request.")

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("app_id")
    @classmethod
    def _app_id_shape(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ValueError("app_id must be a non-empty AppID without spaces")
        return value

    @field_validator("app_secret")
    @classmethod
    def _secret_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("app_secret must not be empty")
        return value


def keyword_data(value: Any) -> Any:
    """Template ``data``: keyword names as WeChat spells them, scalar values as strings."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _KEYWORD.match(key):
            raise ValueError(f"data key {key!r} is not a WeChat keyword name (like keyword1, thing1, time2)")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"data.{key} must be a string")
        out[key] = item if isinstance(item, str) else str(item)
    return out


def wrap_values(data: dict[str, str]) -> dict[str, dict[str, str]]:
    return {key: {"value": value} for key, value in data.items()}


class MemoryCache:
    """A ``SharedCache`` for one channel instance, used when no engine has bound one (tests, scripts)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float | None]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            del self._values[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        self._values[key] = (value, time.monotonic() + ttl_seconds if ttl_seconds is not None else None)

    async def add(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_seconds)
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)


class WeChatChannel(HttpChannel):
    """Base of ``wechat_oa`` and ``wechat_mp``: token handling and one errcode-classified POST."""

    provider: ClassVar[str] = "WeChat"
    retryable_codes: ClassVar[frozenset[int]] = frozenset({SYSTEM_BUSY, DAILY_QUOTA, MINUTE_QUOTA})

    def __init__(self) -> None:
        super().__init__()
        self._local_cache = MemoryCache()
        self._refresh_locks: dict[str, asyncio.Lock] = {}

    # -- sending -------------------------------------------------------------------------------

    async def call_with_token(self, settings: WeChatAppSettings, path: str, body: dict[str, Any]) -> SendResult:
        """POST ``body`` to ``path?access_token=…``; on an invalid-token answer refetch the token and retry once."""
        token = await self.access_token(settings)
        answer = await self._post_api(settings, path, token, body)
        if answer.get("errcode") in TOKEN_INVALID:
            await self.forget_token(settings.app_id, token)
            token = await self.access_token(settings)
            answer = await self._post_api(settings, path, token, body)
            if answer.get("errcode") in TOKEN_INVALID:
                # A fresh token refused too: WeChat's side, or another party forced a refresh meanwhile.
                raise RetryableError(f"{self.provider}: {_errmsg(answer)} (after a token refresh)", code=_code(answer))
        return self.classify(answer)

    def classify(self, answer: dict[str, Any]) -> SendResult:
        errcode = answer.get("errcode")
        if errcode == 0:
            msgid = answer.get("msgid")
            return SendResult(provider_message_id=str(msgid) if msgid is not None else None, detail="ok")
        if errcode in self.retryable_codes:
            retry_after = QUOTA_RETRY_SECONDS.get(errcode) if isinstance(errcode, int) else None
            raise RetryableError(f"{self.provider}: {_errmsg(answer)}", code=_code(answer), retry_after=retry_after)
        raise TerminalError(f"{self.provider}: {_errmsg(answer)}", code=_code(answer))

    async def _post_api(
        self, settings: WeChatAppSettings, path: str, token: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        answer = await self._post_json(settings, path, body, params={"access_token": token})
        if "errcode" not in answer:
            raise RetryableError(f"{self.provider} answered without an errcode: {json.dumps(answer)[:200]}")
        return answer

    async def _post_json(
        self, settings: WeChatAppSettings, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        import httpx  # on first send (channels/_http.py)

        content = encode_json_body(body)  # TerminalError if it cannot be UTF-8
        try:
            response = await self._http().post(
                settings.base_url + path,
                params=params,
                content=content,
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=settings.timeout,
            )
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableError(
                f"{self.provider} answered HTTP {status}",
                code=str(status),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        answer = _json_object(response)
        if answer is None:
            if 200 <= status < 300:
                raise RetryableError(f"{self.provider} answered HTTP {status} without JSON: {response.text[:200]}")
            raise TerminalError(f"{self.provider} answered HTTP {status}: {response.text[:200]}", code=str(status))
        return answer

    # -- the access token ----------------------------------------------------------------------

    def _cache(self) -> SharedCache:
        return self.cache if self.cache is not None else self._local_cache

    async def access_token(self, settings: WeChatAppSettings) -> str:
        """The app's current token: from the shared cache, else fetched (once per process at a time)."""
        cache, key = self._cache(), token_cache_key(settings.app_id)
        token = await cache.get(key)
        if token:
            return token
        lock = self._refresh_locks.setdefault(settings.app_id, asyncio.Lock())
        async with lock:
            token = await cache.get(key)
            if token:
                return token
            return await self._refresh(settings, cache, key)

    async def forget_token(self, app_id: str, token: str) -> None:
        """Drop a token WeChat refused, unless another process already replaced it."""
        cache, key = self._cache(), token_cache_key(app_id)
        if await cache.get(key) == token:
            await cache.delete(key)

    async def _refresh(self, settings: WeChatAppSettings, cache: SharedCache, key: str) -> str:
        lock_key = key + ":refreshing"
        holder = await cache.add(lock_key, "1", ttl_seconds=settings.timeout + 5)
        if not holder:
            # Another process is fetching: wait for its token. If it never comes, fetch anyway — in
            # normal mode stable_token gives every caller the same token, so that is only wasteful.
            deadline = time.monotonic() + settings.timeout
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                token = await cache.get(key)
                if token:
                    return token
        try:
            token, expires_in = await self._fetch_token(settings)
            await cache.set(key, token, ttl_seconds=token_cache_ttl(expires_in))
            return token
        finally:
            if holder:
                await cache.delete(lock_key)

    async def _fetch_token(self, settings: WeChatAppSettings) -> tuple[str, float]:
        body = {
            "grant_type": "client_credential",
            "appid": settings.app_id,
            "secret": settings.app_secret.get_secret_value(),
            "force_refresh": False,
        }
        answer = await self._post_json(settings, TOKEN_PATH, body)
        errcode = answer.get("errcode", 0)
        token = answer.get("access_token")
        if errcode == 0 and isinstance(token, str) and token:
            expires_in = answer.get("expires_in")
            if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
                expires_in = DEFAULT_EXPIRES_IN
            return token, float(expires_in)
        what = f"{self.provider} access token: {_errmsg(answer)}"
        if errcode == 0:
            raise RetryableError(f"{self.provider} access token answer without a token")
        if errcode in TOKEN_TERMINAL or errcode not in self.retryable_codes:
            raise TerminalError(what, code=_code(answer))
        retry_after = QUOTA_RETRY_SECONDS.get(errcode) if isinstance(errcode, int) else None
        raise RetryableError(what, code=_code(answer), retry_after=retry_after)


def parse_content(model: type[BaseModel], content: dict[str, Any], channel: str) -> Any:
    """The rendered template as ``model``; a template that no longer fits can never send."""
    known = {k: v for k, v in content.items() if k in model.model_fields}
    try:
        return model.model_validate(known)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise TerminalError(f"{channel} template is invalid: {where + ': ' if where else ''}{error['msg']}") from exc


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _code(answer: dict[str, Any]) -> str:
    return str(answer.get("errcode"))


def _errmsg(answer: dict[str, Any]) -> str:
    return f"{answer.get('errcode')} {str(answer.get('errmsg', ''))[:200]}".strip()
