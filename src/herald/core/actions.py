"""Actions on an inbox item (confirm / decline with a reason): what the trigger may carry, what an
item shows in its recipient's locale, and whether an answer is acceptable. Pure: no I/O.

An action with an ``id`` is answered (``POST /v1/me/inbox/{item}/actions/{id}``); one without an
``id`` is a link (``{"label", "url"}``, as in-app templates have always had). A ``label`` is text, or
an object of texts per locale (``{"zh-CN": "确认", "en": "Confirm"}``) that each item resolves to
its recipient's locale as templates are chosen (``core.locales.pick_locale``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from herald.core.errors import Invalid, NotFound
from herald.core.locales import pick_locale

MAX_ACTIONS = 5
ACTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
"""Safe in a URL path segment as it is: letters, digits and ``_ . : -``, at most 64."""
MAX_LABEL = 64
MAX_LABEL_LOCALES = 20
MAX_REASON = 1000
"""Characters of a reason (the widget's text box takes as many)."""
STYLES = ("default", "primary", "danger")
INAPP = "inapp"


def is_answerable(action: Any) -> bool:
    """An action a user answers (it has an id), as opposed to a link."""
    return isinstance(action, Mapping) and isinstance(action.get("id"), str)


def requires_reason(action: Mapping[str, Any]) -> bool:
    """``"requires_reason": true``; in a template also ``"reason": "required"`` (the widget's spelling:
    ``"reason": true`` asks for an optional reason)."""
    return action.get("requires_reason") is True or action.get("reason") == "required"


def label_in(label: Any, locale: str | None, default_locale: str) -> Any:
    """A label as one recipient reads it: a per-locale object resolved to ``locale`` (else the
    default, else any: ``pick_locale``); any other value as it is."""
    if not isinstance(label, Mapping):
        return label
    chosen = pick_locale([k for k in label if isinstance(k, str)], locale, default_locale)
    return label[chosen] if chosen is not None else None


def localized_actions(actions: Any, locale: str | None, default_locale: str) -> Any:
    """``actions`` with every per-locale label resolved for a recipient whose locale is ``locale``."""
    if not isinstance(actions, list) or not any(_per_locale(a) for a in actions):
        return actions
    return [{**a, "label": label_in(a["label"], locale, default_locale)} if _per_locale(a) else a for a in actions]


def _per_locale(action: Any) -> bool:
    return isinstance(action, Mapping) and isinstance(action.get("label"), Mapping)


def labels_need_locale(actions: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether some label differs by locale, so each recipient's locale must be known."""
    return any(isinstance(a.get("label"), Mapping) and len(a["label"]) > 1 for a in actions or ())


def trigger_action_problems(
    actions: Sequence[Mapping[str, Any]] | None, channels: Sequence[str]
) -> list[tuple[str, str]]:
    """What is wrong with a trigger's ``actions`` beyond each field's own shape (the API's schema
    checks that): an action that is neither an answer (id) nor a link (url), ids repeated, and
    actions on a notification that has no inbox to show them in."""
    if not actions:
        return []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, action in enumerate(actions):
        action_id = action.get("id")
        if isinstance(action_id, str):
            if action_id in seen:
                problems.append((f"actions.{i}.id", f"action id '{action_id}' is given twice; ids must be unique"))
            seen.add(action_id)
        elif action.get("url") is None:
            problems.append((f"actions.{i}.id", "give an id (an answer the user gives) or a url (a link)"))
        elif requires_reason(action):
            problems.append((f"actions.{i}.requires_reason", "only an action with an id is answered with a reason"))
    if INAPP not in channels:
        problems.append(("actions", "actions are answered in the inbox: the notification needs the 'inapp' channel"))
    return problems


def with_trigger_actions(
    inapp: Mapping[str, Mapping[str, Any]], actions: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The rendered in-app content of every locale with the trigger's ``actions`` in place of the
    template's: given actions replace the template's whole list (links included)."""
    return {locale: {**content, "actions": [dict(a) for a in actions]} for locale, content in inapp.items()}


def has_answerable_actions(rendered: Mapping[str, Any] | None) -> bool:
    """Whether a notification's rendered in-app content (any locale) asks its recipients for an answer."""
    inapp = (rendered or {}).get(INAPP)
    if not isinstance(inapp, Mapping):
        return False
    return any(
        isinstance(content, Mapping)
        and isinstance(content.get("actions"), list)
        and any(is_answerable(a) for a in content["actions"])
        for content in inapp.values()
    )


def find_action(actions: Any, action_id: str) -> Mapping[str, Any]:
    """The item's answerable action ``action_id``; NotFound when it has none of that id."""
    for action in actions if isinstance(actions, list) else ():
        if is_answerable(action) and action["id"] == action_id:
            return action  # type: ignore[no-any-return]
    raise NotFound("action")


def checked_reason(action: Mapping[str, Any], reason: str | None) -> str | None:
    """The reason to record (trimmed; blank is none); Invalid naming ``reason`` when the action
    requires one and none was given, or when it is too long."""
    text = reason.strip() if reason is not None else ""
    if not text:
        if requires_reason(action):
            raise Invalid([("reason", f"action '{action['id']}' requires a reason")])
        return None
    if len(text) > MAX_REASON:
        raise Invalid([("reason", f"at most {MAX_REASON} characters")])
    return text
