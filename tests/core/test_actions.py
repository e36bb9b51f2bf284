"""The pure decisions of actions (core/actions.py): labels per locale, which actions are answered,
the reason an answer needs, and what a trigger's actions may not be."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.actions import (
    MAX_REASON,
    checked_reason,
    find_action,
    has_answerable_actions,
    label_in,
    labels_need_locale,
    localized_actions,
    trigger_action_problems,
    with_trigger_actions,
)
from herald.core.errors import Invalid, NotFound

LOCALES = st.sampled_from(["zh-CN", "zh-TW", "en", "en-GB", "fr", "ja", "de-AT"])
LABELS = st.dictionaries(LOCALES, st.text(min_size=1, max_size=10), min_size=1, max_size=5)


@given(LABELS, st.none() | LOCALES, LOCALES)
def test_a_per_locale_label_resolves_to_one_of_its_texts(
    label: dict[str, str], wanted: str | None, default: str
) -> None:
    picked = label_in(label, wanted, default)
    assert picked in label.values()
    if wanted in label:
        assert picked == label[wanted]  # the recipient's own locale first
    elif wanted is None and default in label:
        assert picked == label[default]


def test_labels_fall_back_from_the_locale_to_its_language_then_the_default() -> None:
    label = {"zh-CN": "确认", "en": "Confirm"}
    assert label_in(label, "en-GB", "zh-CN") == "Confirm"
    assert label_in(label, "zh-HK", "en") == "确认"
    assert label_in(label, "fr", "zh-CN") == "确认"
    assert label_in(label, "fr", "en") == "Confirm"
    assert label_in("纯文本", "en", "zh-CN") == "纯文本"


@given(st.lists(st.fixed_dictionaries({"id": st.text(max_size=5), "label": st.text(max_size=5) | LABELS}), max_size=5))
def test_localizing_changes_labels_only(actions: list[dict[str, Any]]) -> None:
    out = localized_actions(actions, "en", "zh-CN")
    assert [a["id"] for a in out] == [a["id"] for a in actions]
    assert all(isinstance(a["label"], str) for a in out)
    for before, after in zip(actions, out, strict=True):
        assert after == before if isinstance(before["label"], str) else after["label"] in before["label"].values()
    assert labels_need_locale(actions) == any(isinstance(a["label"], dict) and len(a["label"]) > 1 for a in actions)


def test_actions_that_are_not_a_list_pass_through() -> None:
    assert localized_actions(None, "en", "zh-CN") is None
    assert localized_actions("x", "en", "zh-CN") == "x"


DECLINE = {"id": "decline", "label": "拒绝", "requires_reason": True}
CONFIRM = {"id": "confirm", "label": "确认"}


@given(st.none() | st.text(max_size=MAX_REASON + 20))
def test_a_reason_is_recorded_trimmed_or_refused_naming_reason(reason: str | None) -> None:
    for action in (DECLINE, CONFIRM):
        try:
            kept = checked_reason(action, reason)
        except Invalid as exc:
            assert [f for f, _ in exc.errors] == ["reason"]
            blank = not (reason or "").strip()
            assert (blank and action is DECLINE) or len((reason or "").strip()) > MAX_REASON
            continue
        assert kept is None or (kept == kept.strip() and 0 < len(kept) <= MAX_REASON)
        assert kept is not None or action is CONFIRM


def test_the_templates_spelling_of_a_required_reason_counts() -> None:
    with pytest.raises(Invalid):
        checked_reason({"id": "no", "label": "x", "reason": "required"}, " ")
    assert checked_reason({"id": "no", "label": "x", "reason": True}, "") is None  # asked, not required


def test_only_actions_with_an_id_are_answered() -> None:
    actions = [CONFIRM, {"label": "详情", "url": "https://x"}, {"id": 5, "label": "n"}]
    assert find_action(actions, "confirm") is CONFIRM
    for missing in ("详情", "5", "decline"):
        with pytest.raises(NotFound):
            find_action(actions, missing)
    with pytest.raises(NotFound):
        find_action(None, "confirm")
    assert has_answerable_actions({"inapp": {"zh-CN": {"actions": actions}}})
    assert not has_answerable_actions({"inapp": {"zh-CN": {"actions": actions[1:]}}})
    assert not has_answerable_actions({"email": {"zh-CN": {"actions": [CONFIRM]}}})
    assert not has_answerable_actions(None)


def test_what_a_triggers_actions_may_not_be() -> None:
    assert trigger_action_problems(None, ["email"]) == []
    assert trigger_action_problems([], ["email"]) == []
    assert trigger_action_problems([CONFIRM, DECLINE], ["inapp"]) == []
    problems = trigger_action_problems(
        [CONFIRM, {"label": "x"}, {"label": "x", "url": "/y", "requires_reason": True}, {**DECLINE, "id": "confirm"}],
        ["email"],
    )
    assert [f for f, _ in problems] == ["actions.1.id", "actions.2.requires_reason", "actions.3.id", "actions"]


def test_trigger_actions_replace_the_templates_in_every_locale() -> None:
    inapp = {"zh-CN": {"title": "t", "actions": [{"label": "l", "url": "/u"}]}, "en": {"title": "e"}}
    out = with_trigger_actions(inapp, [CONFIRM])
    assert out == {"zh-CN": {"title": "t", "actions": [CONFIRM]}, "en": {"title": "e", "actions": [CONFIRM]}}
    assert inapp["zh-CN"]["actions"] == [{"label": "l", "url": "/u"}]  # not changed in place
