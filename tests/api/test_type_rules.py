"""Notification types: the delivery rules they carry (issue 8), stored, returned and checked."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.rules import CapPeriod, QuietHoursMode, TypeRules, rule_problems
from tests.api.test_accounts import fields_named
from tests.api.test_types import put_type
from tests.conftest import Harness

RULES: dict[str, Any] = {
    "critical": False,
    "quiet_hours": "drop",
    "dedup_seconds": 600,
    "caps": [{"channel": "webhook", "per": "day", "max": 3}, {"channel": None, "per": "hour", "max": 10}],
    "throttle": {"max": 5, "window_seconds": 3600},
    "merge": {"key": "${post.id}", "window_seconds": 3600},
    "digest": {"channels": ["webhook"], "window_seconds": 600, "max_items": 50},
}


async def test_rules_round_trip(harness: Harness) -> None:
    r = await put_type(harness, "post.liked", ["inapp", "webhook"], **RULES)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in RULES} == RULES
    got = (await harness.client.get("/v1/notification-types/post.liked", headers=harness.reader())).json()
    assert {k: got[k] for k in RULES} == RULES
    # a full replacement: left out, each rule returns to its default
    r = await put_type(harness, "post.liked", ["inapp"])
    assert r.status_code == 200
    assert {k: r.json()[k] for k in RULES} == {
        "critical": False,
        "quiet_hours": "defer",
        "dedup_seconds": None,
        "caps": [],
        "throttle": None,
        "merge": None,
        "digest": None,
    }


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"quiet_hours": "sometimes"}, "quiet_hours"),
        ({"dedup_seconds": 0}, "dedup_seconds"),
        ({"dedup_seconds": 10**12}, "dedup_seconds"),
        ({"caps": [{"channel": "webhook", "per": "week", "max": 3}]}, "caps.0.per"),
        ({"caps": [{"channel": "webhook", "per": "day", "max": 0}]}, "caps.0.max"),
        ({"caps": [{"channel": "email", "per": "day", "max": 1}]}, "caps.0.channel"),
        ({"caps": [{"channel": "inapp", "per": "day", "max": 1}]}, "caps.0.channel"),
        ({"throttle": {"max": 5}}, "throttle.window_seconds"),
        ({"merge": {"key": "", "window_seconds": 60}}, "merge.key"),
        ({"digest": {"channels": [], "window_seconds": 60}}, "digest.channels"),
        ({"digest": {"channels": ["inapp"], "window_seconds": 60}}, "digest.channels.0"),
        ({"digest": {"channels": ["sms"], "window_seconds": 60}}, "digest.channels.0"),
        ({"digest": {"channels": ["webhook"], "window_seconds": 60, "max_items": 5000}}, "digest.max_items"),
    ],
)
async def test_bad_rules_are_422_naming_the_field(harness: Harness, extra: dict[str, Any], field: str) -> None:
    r = await put_type(harness, "t", ["inapp", "webhook"], **extra)
    assert r.status_code == 422, r.text
    assert field in fields_named(r), r.json()
    r = await harness.client.get("/v1/notification-types/t", headers=harness.reader())
    assert r.status_code == 404, "nothing was created"


async def test_merging_needs_the_inbox(harness: Harness) -> None:
    r = await put_type(harness, "t", ["webhook"], merge={"key": "${id}", "window_seconds": 60})
    assert r.status_code == 422 and "merge" in fields_named(r)


@given(
    channels=st.lists(st.sampled_from(["inapp", "email", "sms", "webhook"]), min_size=1, max_size=4, unique=True),
    cap_channel=st.one_of(st.none(), st.sampled_from(["inapp", "email", "sms", "webhook"])),
    digest=st.lists(st.sampled_from(["inapp", "email", "sms", "webhook"]), min_size=1, max_size=3),
)
def test_rule_problems_name_only_what_cannot_apply(
    channels: list[str], cap_channel: str | None, digest: list[str]
) -> None:
    rules = TypeRules.of(
        {
            "caps": [{"channel": cap_channel, "per": CapPeriod.DAY, "max": 1}],
            "digest": {"channels": digest, "window_seconds": 60, "max_items": 5},
            "quiet_hours": QuietHoursMode.DEFER,
        }
    )
    fields = {f for f, _ in rule_problems(channels, rules)}
    cap_ok = cap_channel is None or (cap_channel in channels and cap_channel != "inapp")
    assert ("caps.0.channel" in fields) is not cap_ok
    for i, c in enumerate(digest):
        assert (f"digest.channels.{i}" in fields) is (c == "inapp" or c not in channels)
    assert ("digest.channels" in fields) is (len(set(digest)) != len(digest))
