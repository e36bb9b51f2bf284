"""Choosing a channel account: weighted among those with weight > 0, and after a retryable
failure, a different account when there is one (weight 0 marks a failover-only account)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def choose_account(
    accounts: Sequence[dict[str, Any]],
    *,
    avoid: str | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any] | None:
    """``accounts`` are dicts with ``name``, ``default`` and ``config`` (which may hold ``weight``).

    Without weights: the default account, else the first. With weights: a weighted choice among
    accounts of weight > 0; ``avoid`` (the account that just failed) is left out while any other
    account remains, and failover-only accounts (weight 0) are used only then.
    """
    if not accounts:
        return None

    def weight(account: dict[str, Any]) -> int:
        return int((account["config"] or {}).get("weight", 1))

    if not any("weight" in (a["config"] or {}) for a in accounts):
        preferred = [a for a in accounts if a["name"] != avoid] or list(accounts)
        return next((a for a in preferred if a["default"]), preferred[0])
    others = [a for a in accounts if a["name"] != avoid]
    pool = others or list(accounts)
    weighted = [a for a in pool if weight(a) > 0]
    if not weighted:
        return pool[0]  # only failover accounts left
    r = rng or random
    return r.choices(weighted, weights=[weight(a) for a in weighted])[0]
