"""Logging without secrets.

Libraries log what they see: httpx writes every request URL at INFO (DingTalk's ``access_token=…``,
WeCom's ``key=…``, the Feishu hook token in the path, tokens in webhook URLs), uvicorn's access log
writes ``?token=<user token>`` of the SSE/WebSocket URLs, aiosqlite writes every SQL parameter at
DEBUG. ``install_redaction()`` makes every log record of the process pass through ``redact`` when
it is created, whichever logger or handler it goes to, and keeps aiosqlite's parameter dump off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from herald.core.urls import MASK, looks_like_token, mask_query, redact_url

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")
# A query string outside a full URL (uvicorn's access log has only the path and query).
_QUERY = re.compile(r"(?<=\?)[A-Za-z0-9_\-.~%\[\]]+=[^\s\"'<>#]*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_AUTH_SCHEME = re.compile(r"\b(Bearer|bearer|Basic|vapid)(\s+)[A-Za-z0-9._~+/=\-]{8,}")
_API_KEY = re.compile(r"\bhk_[A-Za-z0-9_\-]{6,}")
_WHSEC = re.compile(r"\bwhsec_[A-Za-z0-9+/=]+")
# Path segments outside a full URL that look like tokens (urllib3 logs "POST /push/<token>").
_PATH_TOKEN = re.compile(r"(?<=/)[A-Za-z0-9_\-.~%:+=]{16,}")

_QUIET = {"aiosqlite": logging.INFO}
"""Loggers whose DEBUG output is raw SQL with its parameters (secrets, personal data)."""

_PLAIN = (int, float, bool, type(None))


def _path_token(match: re.Match[str]) -> str:
    return MASK if looks_like_token(match.group(0)) else match.group(0)


def redact(text: str) -> str:
    """``text`` with URL credentials, query values, tokens in URL paths, bearer credentials, JWTs,
    Herald API keys and webhook secrets masked."""
    if not text:
        return text
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    text = _QUERY.sub(lambda m: mask_query(m.group(0)), text)
    text = _JWT.sub(MASK, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _API_KEY.sub("hk_" + MASK, text)
    text = _WHSEC.sub(MASK, text)
    return _PATH_TOKEN.sub(_path_token, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    text = value if isinstance(value, str) else str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record in place: the message, each argument (kept as is when clean, so
    ``%d`` and friends still work) and the exception text."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    else:
        record.msg = _redact_value(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_value(a) for a in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {k: _redact_value(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """The same as a filter, for a handler set up outside Herald (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "herald_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    factory.herald_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    for name, level in _QUIET.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
