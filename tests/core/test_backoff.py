from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from herald.core.backoff import retry_delay


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0.01, max_value=10), st.integers(0, 2**32))
def test_delay_is_within_the_jittered_exponential_step(attempts: int, base: float, seed: int) -> None:
    cap = 300.0
    step = min(cap, base * 2 ** (attempts - 1))
    delay = retry_delay(attempts, base=base, cap=cap, rng=random.Random(seed))
    assert step / 2 <= delay <= step


def test_delay_grows_then_caps() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, base=1, cap=16, rng=rng) for n in range(1, 9)]
    assert delays[0] <= 1 and 8 <= delays[4] <= 16 and all(d <= 16 for d in delays)


def test_retry_after_is_a_floor_even_above_the_cap() -> None:
    assert retry_delay(1, base=1, cap=10, retry_after=120) == 120
    assert retry_delay(1, base=1, cap=10, retry_after=0.1) >= 0.5


@given(
    st.integers(min_value=-5, max_value=10**6),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    st.floats(min_value=0, max_value=1e12),
)
def test_absurd_inputs_stay_under_the_ceiling(attempts: int, retry_after: float | None, cap: float) -> None:
    """``Retry-After: 999999999999`` (or inf, NaN, negative) can neither overflow a date nor
    push a retry past the documented ceiling."""
    from datetime import UTC, datetime

    from herald.core.backoff import MAX_RETRY_AFTER_SECONDS, retry_at

    delay = retry_delay(attempts, base=2, cap=cap, retry_after=retry_after)
    assert 0 <= delay <= MAX_RETRY_AFTER_SECONDS
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert now <= retry_at(now, delay) <= now + timedelta(seconds=MAX_RETRY_AFTER_SECONDS)
    assert retry_at(now, float("inf")) == now + timedelta(seconds=MAX_RETRY_AFTER_SECONDS)
    assert retry_at(now, float("nan")) == now
