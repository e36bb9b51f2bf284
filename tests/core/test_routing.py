"""Choosing the account: weighted inside a routing group, failover only inside it."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from herald.core.routing import Candidate, choose_account


def acct(name: str, weight: int | None = None, default: bool = False, group: str | None = None) -> Candidate:
    return Candidate(name, default, group, 1 if weight is None else weight, weight is not None)


def pick(accounts: list[Candidate], **kw: object) -> str | None:
    chosen = choose_account(accounts, **kw)  # type: ignore[arg-type]
    return chosen.name if chosen else None


def test_without_groups_the_default_then_the_first() -> None:
    assert pick([acct("a"), acct("b", default=True)]) == "b"
    assert pick([acct("a"), acct("b")]) == "a"
    assert pick([]) is None


def test_a_retry_never_leaves_an_ungrouped_account() -> None:
    accounts = [acct("hook-a", default=True), acct("hook-b")]
    assert pick(accounts, previous="hook-a", failed_before=True) == "hook-a"
    assert pick(accounts, previous="hook-b", failed_before=True) == "hook-b"


def test_a_retry_fails_over_inside_its_group_only() -> None:
    accounts = [acct("smtp-1", default=True, group="mail"), acct("smtp-2", group="mail"), acct("smtp-x")]
    assert pick(accounts, previous="smtp-1", failed_before=True) == "smtp-2"
    assert pick(accounts, previous="smtp-1", failed_before=False) == "smtp-1"  # not a failure: stay
    assert pick(accounts, previous="smtp-x", failed_before=True) == "smtp-x"


def test_weighted_choice_inside_a_logical_channel() -> None:
    rng = random.Random(7)
    accounts = [acct("aliyun", 3), acct("tencent", 1), acct("spare", 0)]
    picks = Counter(pick(accounts, logical=True, rng=rng) for _ in range(4000))
    assert picks["spare"] == 0
    assert 2.5 < picks["aliyun"] / picks["tencent"] < 3.5
    assert {pick(accounts, logical=True, previous="aliyun", failed_before=True, rng=rng) for _ in range(200)} == {
        "tencent"
    }
    assert pick([acct("aliyun", 1), acct("spare", 0)], logical=True, previous="aliyun", failed_before=True) == "spare"
    assert pick([acct("aliyun", 1)], logical=True, previous="aliyun", failed_before=True) == "aliyun"


def test_named_accounts_are_the_only_ones_used() -> None:
    accounts = [acct("a", default=True), acct("b"), acct("c")]
    assert pick(accounts, named=["c"]) == "c"
    assert pick(accounts, named=["b", "c"], previous="b", failed_before=True) == "c"
    assert pick(accounts, named=["gone"]) is None


names = st.sampled_from(["a", "b", "c", "d"])


@given(
    st.lists(
        st.builds(
            acct,
            names,
            st.one_of(st.none(), st.integers(0, 5)),
            st.booleans(),
            st.one_of(st.none(), st.sampled_from(["g1", "g2"])),
        ),
        max_size=6,
        unique_by=lambda c: c.name,
    ),
    st.one_of(st.none(), names),
    st.booleans(),
    st.booleans(),
)
def test_the_choice_is_always_an_allowed_account(
    accounts: list[Candidate], previous: str | None, failed: bool, logical: bool
) -> None:
    chosen = choose_account(accounts, previous=previous, failed_before=failed, logical=logical)
    if not accounts:
        assert chosen is None
        return
    assert chosen in accounts
    before = next((c for c in accounts if c.name == previous), None)
    if before is not None and not logical:
        if not failed or before.group is None:
            assert chosen == before  # destinations: a retry stays where it was sent
        else:
            assert chosen.group == before.group  # failover never leaves the group
