"""Typed errors shared by channels and the engine; they end up in the delivery trace."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send did not succeed. ``code`` is the provider's own code, when it gave one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RetryableError(DeliveryError):
    """Try again later: network trouble, 5xx, throttling. ``retry_after`` in seconds, if the provider said."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TerminalError(DeliveryError):
    """Never going to work: bad address, bad template, unsubscribed."""


class SkipDelivery(DeliveryError):
    """Deciding not to send (no address, no quota): ``reason`` becomes the delivery's reason code
    (a ``core.rules.SkipReason`` value) and ``message`` its ``reason_detail``."""

    def __init__(self, message: str, *, reason: str = "no_address", code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason


class TemplateError(ValueError):
    """A template could not be compiled or rendered; ``variable`` names what was missing."""

    def __init__(self, message: str, *, field: str | None = None, variable: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.variable = variable


class Invalid(ValueError):
    """Bad input, answered with 422 (or ``status``) naming each field."""

    def __init__(self, errors: list[tuple[str, str]], *, status: int = 422, title: str = "Invalid request") -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors
        self.status = status
        self.title = title


class NotFound(LookupError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Conflict(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PermanentJobError(Exception):
    """A background job that can never succeed (its receiver refuses it): failed at once."""
