"""When to try a failed delivery again: exponential backoff with jitter, Retry-After honoured."""

from __future__ import annotations

import random


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
    without collapsing to zero. A provider's Retry-After is a floor, never shortened.
    """
    step = min(cap, base * (2 ** max(0, attempts - 1)))
    r = rng or random
    delay = step / 2 + float(r.uniform(0, step / 2))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return float(min(delay, max(cap, retry_after or 0)))
