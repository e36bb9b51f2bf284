"""The pure parts of expiry and retention: a waiting outcome is due by the delivery's expiry, what
the purge deletes and up to when, the pause between batches, and the closed set of reason labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from herald.core.enums import DeliveryStatus
from herald.core.outcomes import REASON_CODES, FailReason, Outcome, reason_label
from herald.core.retention import (
    BATCH_TARGET_SECONDS,
    MAX_PAUSE_SECONDS,
    MIN_BATCH,
    Purge,
    Retention,
    next_batch_size,
    pause_after,
)
from herald.core.rules import SkipReason

T0 = datetime(2030, 1, 1, tzinfo=UTC)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
waiting = st.one_of(
    st.builds(lambda at: Outcome.retry(at, "503"), moments),
    st.builds(lambda at: Outcome.deferred(at, SkipReason.QUIET_HOURS, "quiet"), moments),
    st.builds(lambda at: Outcome.deferred(at, SkipReason.RATE_LIMITED, "rate limited"), moments),
)


def test_expired_is_a_suppression_with_its_reason() -> None:
    outcome = Outcome.expired()
    assert outcome.status is DeliveryStatus.SKIPPED and outcome.reason == "expired"
    assert not outcome.attempted and outcome.detail


@given(waiting, st.one_of(st.none(), moments))
def test_a_waiting_outcome_is_due_by_the_expiry(outcome: Outcome, expires_at: datetime | None) -> None:
    capped = outcome.due_by(expires_at)
    assert capped.next_attempt_at is not None and outcome.next_attempt_at is not None
    if expires_at is None or outcome.next_attempt_at <= expires_at:
        assert capped == outcome  # due before the expiry: untouched
    else:
        assert capped.next_attempt_at == expires_at
        assert capped.status is outcome.status and capped.reason == outcome.reason
        assert capped.attempted == outcome.attempted


@given(st.sampled_from([Outcome.sent(), Outcome.failed("x"), Outcome.expired(), Outcome.cancelled()]), moments)
def test_an_outcome_that_ends_the_delivery_is_untouched(outcome: Outcome, expires_at: datetime) -> None:
    assert outcome.due_by(expires_at) is outcome


def test_retention_of_zero_keeps_forever() -> None:
    none = Retention.of(inbox_days=0, deliveries_days=0, idempotency_hours=0)
    assert not none.enabled and none.plan(T0, replay_window=timedelta(hours=24)) == []
    inbox_only = Retention.of(inbox_days=30, deliveries_days=0, idempotency_hours=0)
    assert inbox_only.enabled
    assert inbox_only.plan(T0, replay_window=timedelta(hours=24)) == [(Purge.INBOX, T0 - timedelta(days=30))]


def test_the_plan_purges_deliveries_before_their_notifications() -> None:
    plan = Retention.of(inbox_days=180, deliveries_days=90, idempotency_hours=48).plan(
        T0, replay_window=timedelta(hours=24)
    )
    assert plan == [
        (Purge.DELIVERIES, T0 - timedelta(days=90)),
        (Purge.NOTIFICATIONS, T0 - timedelta(days=90)),
        (Purge.JOBS, T0 - timedelta(days=90)),
        (Purge.INBOX, T0 - timedelta(days=180)),
        # a key taken 48 h ago expired 24 h ago: bounded on the expiry column
        (Purge.IDEMPOTENCY, T0 - timedelta(hours=24)),
    ]


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=1000))
def test_an_idempotency_key_is_never_purged_within_its_window(hours: int, window_hours: int) -> None:
    """The bound on ``expires_at`` is never after now: a live key (expires_at > now) is never purged."""
    plan = dict(Retention(idempotency=timedelta(hours=hours)).plan(T0, replay_window=timedelta(hours=window_hours)))
    assert plan[Purge.IDEMPOTENCY] <= T0


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_the_pause_is_as_long_as_the_batch_within_bounds(seconds: float) -> None:
    pause = pause_after(seconds)
    assert 0 < pause <= MAX_PAUSE_SECONDS
    assert pause >= min(seconds, MAX_PAUSE_SECONDS)


@given(st.one_of(st.none(), st.text(max_size=50)))
def test_a_reason_label_is_from_a_closed_set(reason: str | None) -> None:
    label = reason_label(reason)
    assert label in REASON_CODES | {"none", "other"}
    if reason in REASON_CODES:
        assert label == reason


def test_every_reason_code_is_a_label() -> None:
    assert {r.value for r in SkipReason} <= REASON_CODES
    assert {FailReason.ATTEMPTS_EXHAUSTED, FailReason.PROVIDER_REFUSED, FailReason.ERROR} <= REASON_CODES


@given(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
    st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_a_slow_batch_makes_the_next_smaller_and_a_quick_one_larger(current: int, most: int, took: float) -> None:
    size = next_batch_size(current, took, most=most)
    assert min(MIN_BATCH, most) <= size <= most
    if took > BATCH_TARGET_SECONDS and current <= most:
        assert size <= current or size == min(MIN_BATCH, most)
    if took < BATCH_TARGET_SECONDS / 2 and current <= most:
        assert size == min(most, 2 * current) or size == min(MIN_BATCH, most)


def test_a_batch_four_times_too_slow_is_cut_to_a_quarter() -> None:
    assert next_batch_size(1000, BATCH_TARGET_SECONDS * 4, most=1000) == 250
    assert next_batch_size(250, BATCH_TARGET_SECONDS / 4, most=1000) == 500
    assert next_batch_size(800, BATCH_TARGET_SECONDS * 0.8, most=1000) == 800
