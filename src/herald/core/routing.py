"""Choosing the channel account a delivery goes through.

Accounts are destinations unless an admin says otherwise: a retry stays on the account it was
sent through, and fails over to another account only inside an explicit routing group —

- the providers' accounts of one logical channel (``sms`` over Aliyun and Tencent accounts);
- accounts an admin put in the same ``group``;
- the accounts a type or trigger named for the channel (naming several makes them one group).

Inside a group the choice is weighted (``weight`` in an account's config; 0 = failover only);
without weights the default account is preferred.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    name: str
    default: bool = False
    group: str | None = None
    weight: int = 1
    weighted: bool = False
    """The account's config states a weight (otherwise the default account is preferred)."""


def routing_pool(candidates: Sequence[Candidate], *, named: Sequence[str], logical: bool) -> list[Candidate]:
    """The accounts a new delivery may go through: the named ones; else every provider account of
    a logical channel; else the default account's group, or the default account alone."""
    if named:
        wanted = set(named)
        return [c for c in candidates if c.name in wanted]
    if logical or not candidates:
        return list(candidates)
    anchor = next((c for c in candidates if c.default), candidates[0])
    if anchor.group is None:
        return [anchor]
    return [c for c in candidates if c.group == anchor.group]


def failover_group(
    pool: Sequence[Candidate], previous: Candidate, *, named: Sequence[str], logical: bool
) -> list[Candidate]:
    """The accounts a retry of a delivery sent through ``previous`` may move to (``previous`` included)."""
    if named or logical:
        return list(pool)
    if previous.group is None:
        return [previous]
    return [c for c in pool if c.group == previous.group] or [previous]


def weighted_choice(pool: Sequence[Candidate], rng: random.Random | None = None) -> Candidate | None:
    if not pool:
        return None
    if not any(c.weighted for c in pool):
        return next((c for c in pool if c.default), pool[0])
    live = [c for c in pool if c.weight > 0]
    if not live:
        return pool[0]  # only failover accounts left
    return (rng or random).choices(live, weights=[c.weight for c in live])[0]


def choose_account(
    candidates: Sequence[Candidate],
    *,
    named: Sequence[str] = (),
    logical: bool = False,
    previous: str | None = None,
    failed_before: bool = False,
    rng: random.Random | None = None,
) -> Candidate | None:
    """The account for this attempt, or None when no usable account exists.

    A first attempt picks within the routing pool. A later attempt keeps ``previous`` — unless the
    last attempt failed and ``previous`` is in a group with other accounts: then another of them.
    """
    pool = routing_pool(candidates, named=named, logical=logical)
    before = next((c for c in candidates if c.name == previous), None) if previous else None
    if before is None:
        return weighted_choice(pool, rng)
    if not failed_before:
        return before
    group = failover_group(pool or [before], before, named=named, logical=logical)
    others = [c for c in group if c.name != before.name]
    return weighted_choice(others, rng) or before
