"""What handling one delivery came to: one value, settled by the store in one statement.

The worker's stages return an ``Outcome`` as soon as one decides; nothing else carries the
result of a delivery. Constructors name the cases, so no caller assembles flags by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from herald.core.enums import DeliveryStatus
from herald.core.rules import SkipReason


class FailReason:
    """``reason`` codes of a failed delivery."""

    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    PROVIDER_REFUSED = "provider_refused"
    NOT_INSTALLED = "channel_not_installed"
    INVALID_ACCOUNT = "invalid_account"
    ENCODING = "encoding"
    ERROR = "error"


REASON_CODES: frozenset[str] = frozenset(
    {r.value for r in SkipReason} | {v for k, v in vars(FailReason).items() if k.isupper() and isinstance(v, str)}
)
"""Every ``reason`` code a delivery can carry: the closed set metrics may label by."""


def reason_label(reason: str | None) -> str:
    """A reason as a metrics label: its code, ``none``, or ``other`` for anything outside
    ``REASON_CODES`` (a label is never free text: each value is a time series)."""
    if reason is None:
        return "none"
    return reason if reason in REASON_CODES else "other"


@dataclass(frozen=True)
class Outcome:
    status: DeliveryStatus
    reason: str | None = None
    """Why it ended as it did (skipped, failed, deferred), as a code (``SkipReason``, ``FailReason``)."""
    detail: str | None = None
    """The same in words, for a person: the delivery's ``reason_detail``."""
    error: str | None = None
    code: str | None = None
    next_attempt_at: datetime | None = None
    provider_message_id: str | None = None
    account: str | None = None
    """The account this attempt used (recorded on the delivery and on the attempt)."""
    attempted: bool = True
    """False when the delivery was deliberately not tried (out of budget, deferred): the claim's
    attempt count is undone and no attempt is logged."""
    gone: tuple[str, ...] = ()
    """Addresses the provider says no longer exist: forgotten when the outcome is settled."""

    # -- the cases ------------------------------------------------------------------------------

    @classmethod
    def sent(cls, provider_message_id: str | None = None, *, gone: tuple[str, ...] = ()) -> Outcome:
        return cls(DeliveryStatus.SENT, provider_message_id=provider_message_id, gone=gone)

    @classmethod
    def retry(cls, at: datetime, error: str, *, code: str | None = None, gone: tuple[str, ...] = ()) -> Outcome:
        """A failed attempt that will be tried again at ``at``."""
        return cls(DeliveryStatus.PENDING, error=error, code=code, next_attempt_at=at, gone=gone)

    @classmethod
    def failed(
        cls,
        error: str | None,
        *,
        reason: str = FailReason.ERROR,
        detail: str | None = None,
        code: str | None = None,
        gone: tuple[str, ...] = (),
    ) -> Outcome:
        return cls(DeliveryStatus.FAILED, reason=reason, detail=detail or error, error=error, code=code, gone=gone)

    @classmethod
    def skipped(
        cls,
        reason: SkipReason,
        detail: str,
        *,
        code: str | None = None,
        attempted: bool = True,
        gone: tuple[str, ...] = (),
    ) -> Outcome:
        return cls(
            DeliveryStatus.SKIPPED, reason=reason.value, detail=detail, code=code, attempted=attempted, gone=gone
        )

    @classmethod
    def suppressed(cls, reason: SkipReason, detail: str) -> Outcome:
        """A rule decided before any send that this delivery is not sent: no attempt used."""
        return cls.skipped(reason, detail, attempted=False)

    @classmethod
    def deferred(cls, at: datetime, reason: SkipReason, detail: str) -> Outcome:
        """Not tried now, on purpose (no budget, a quiet window): back to the queue, no attempt used."""
        return cls(DeliveryStatus.PENDING, reason=reason.value, detail=detail, next_attempt_at=at, attempted=False)

    @classmethod
    def cancelled(cls) -> Outcome:
        return cls(
            DeliveryStatus.CANCELLED,
            reason=SkipReason.CANCELLED.value,
            detail="notification cancelled",
            attempted=False,
        )

    @classmethod
    def expired(cls) -> Outcome:
        """Past its expiry before it could be sent: ``skipped``, reason ``expired``, like any other
        suppression (the status ``expired`` is left on rows settled before issue 8 only)."""
        return cls.suppressed(SkipReason.EXPIRED, "expired before it could be sent")

    # -- derived --------------------------------------------------------------------------------

    def via(self, account: str | None) -> Outcome:
        return self if account is None else replace(self, account=account)

    def due_by(self, expires_at: datetime | None) -> Outcome:
        """A delivery that waits (a retry's backoff, a deferral) is due again no later than its
        expiry: claimed then, the gate settles it ``skipped``/``expired`` on time, instead of it
        staying pending until a backoff or a quiet window ends long after."""
        at = self.next_attempt_at
        if self.status is not DeliveryStatus.PENDING or at is None or expires_at is None or at <= expires_at:
            return self
        return replace(self, next_attempt_at=expires_at)

    @property
    def trace_error(self) -> str | None:
        """``last_error`` as stored: the provider's code in brackets, then the message."""
        if not self.error:
            return None
        return f"[{self.code}] {self.error}" if self.code else self.error

    @property
    def attempt_label(self) -> str:
        """The outcome column of the attempt log."""
        return "retry" if self.status is DeliveryStatus.PENDING else self.status.value

    @property
    def attempt_error(self) -> str | None:
        if self.error:
            return self.error
        return self.detail if self.status is DeliveryStatus.SKIPPED else None
