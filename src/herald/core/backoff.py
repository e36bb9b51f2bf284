"""When to try a failed delivery again: exponential backoff with jitter, Retry-After honoured
up to a ceiling."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

MAX_RETRY_AFTER_SECONDS = 86_400.0
"""The most a provider's ``Retry-After`` (or any computed delay) can push a retry out: one day.
A poisoned answer (``Retry-After: 999999999999``) must not overflow a date nor park a delivery
for ever."""


def retry_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based).

    "Equal jitter": half of the exponential step is fixed, half random, so retries spread out
    without collapsing to zero. A provider's Retry-After is a floor, never shortened, but it is
    clamped to ``MAX_RETRY_AFTER_SECONDS``; so is the whole delay.
    """
    cap = min(max(cap, 0.0), MAX_RETRY_AFTER_SECONDS)
    step = min(cap, base * (2 ** min(max(0, attempts - 1), 64)))
    r = rng or random
    delay = step / 2 + float(r.uniform(0, step / 2))
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        floor = min(retry_after, MAX_RETRY_AFTER_SECONDS)
        return float(max(delay, floor))
    return float(min(delay, cap))


def retry_at(now: datetime, delay: float) -> datetime:
    """``now + delay``, the delay clamped to the ceiling so the date can never overflow."""
    if math.isnan(delay) or delay < 0:
        delay = 0.0
    return now + timedelta(seconds=min(delay, MAX_RETRY_AFTER_SECONDS))
