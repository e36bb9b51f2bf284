from __future__ import annotations

import random
from collections import Counter
from typing import Any

from herald.core.routing import choose_account


def acct(name: str, weight: int | None = None, default: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {} if weight is None else {"weight": weight}
    return {"name": name, "default": default, "config": config}


def test_without_weights_the_default_then_the_first() -> None:
    assert choose_account([acct("a"), acct("b", default=True)])["name"] == "b"  # type: ignore[index]
    assert choose_account([acct("a"), acct("b")])["name"] == "a"  # type: ignore[index]
    assert choose_account([acct("a"), acct("b", default=True)], avoid="b")["name"] == "a"  # type: ignore[index]
    assert choose_account([]) is None


def test_weighted_choice_follows_the_weights() -> None:
    rng = random.Random(7)
    picks = Counter(
        choose_account([acct("aliyun", 3), acct("tencent", 1), acct("spare", 0)], rng=rng)["name"]  # type: ignore[index]
        for _ in range(4000)
    )
    assert picks["spare"] == 0
    assert 2.5 < picks["aliyun"] / picks["tencent"] < 3.5


def test_failover_avoids_the_account_that_just_failed() -> None:
    rng = random.Random(1)
    accounts = [acct("aliyun", 3), acct("tencent", 1), acct("spare", 0)]
    assert {choose_account(accounts, avoid="aliyun", rng=rng)["name"] for _ in range(200)} == {"tencent"}  # type: ignore[index]
    only_spare_left = [acct("aliyun", 1), acct("spare", 0)]
    assert choose_account(only_spare_left, avoid="aliyun")["name"] == "spare"  # type: ignore[index]
    assert choose_account([acct("aliyun", 1)], avoid="aliyun")["name"] == "aliyun"  # type: ignore[index]
