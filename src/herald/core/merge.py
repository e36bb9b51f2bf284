"""Merging in the inbox (通知消息合并): the pure decisions.

A type with ``merge: {"key": "${post.id}", "window_seconds": 3600}`` turns the events of one user
with the same rendered key, within the window of the first, into one unread item: "张三、李四等 10 人
赞了你的文章". The database decides which events merge (engine/merge.py, store/merge.py); this module
decides what the item says:

- ``count`` and ``actors`` are template variables of a merging type. The trigger renders with
  ``count`` 1 and its own actor; a merge re-renders the in-app template with the item's count and
  its latest distinct actors (newest first, at most ``MAX_ACTORS``).
- ``${actors}`` prints the actors' names (``name``, else ``id``) joined with "、" for Chinese and
  Japanese locales and ", " otherwise; it is also a list (``${actors[0].name}``, ``{% for %}``).
- The rendered key is stored as its SHA-256: any length, any character, one fixed-size index entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from herald.core.errors import Invalid, TemplateError
from herald.core.templates import MissingVariables, check_limits, render_fields, uses_recipient, validate_fields

COUNT, ACTORS = "count", "actors"
MERGE_VARIABLES = (COUNT, ACTORS)
MAX_ACTORS = 5
"""The most actors an item keeps (the newest)."""
MAX_ACTOR_FIELDS = 10
MAX_ACTOR_TEXT = 1000
_CJK_LOCALES = ("zh", "ja")


class Actors(list[dict[str, Any]]):
    """``${actors}``: the actors as a list, printed as their names joined for the item's locale."""

    __slots__ = ("separator",)

    def __init__(self, actors: Iterable[dict[str, Any]], separator: str) -> None:
        super().__init__(actors)
        self.separator = separator

    def __str__(self) -> str:
        return self.separator.join(name for actor in self if (name := actor_name(actor)))


def separator_for(locale: str | None) -> str:
    """The separator of ``${actors}``: "、" for Chinese and Japanese (``zh-CN``, ``zh-Hant-TW``, ``ja``),
    else ", "."""
    language = (locale or "").split("-")[0].split("_")[0].lower()
    return "、" if language in _CJK_LOCALES else ", "


def actor_name(actor: Any) -> str | None:
    """What ``${actors}`` prints for one actor: its ``name``, else its ``id``; None when it has neither."""
    if not isinstance(actor, Mapping):
        return None
    for key in ("name", "id"):
        value = actor.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def render_actors(actors: Sequence[Mapping[str, Any]], locale: str | None) -> str:
    """``${actors}`` as printed for ``locale``."""
    return str(Actors([dict(a) for a in actors], separator_for(locale)))


def _identity(actor: Mapping[str, Any]) -> str:
    """Two events by the same actor count once: same ``id``, or (without one) the same object."""
    actor_id = actor.get("id")
    if isinstance(actor_id, str | int) and not isinstance(actor_id, bool):
        return f"id:{actor_id}"
    return "json:" + json.dumps(actor, sort_keys=True, ensure_ascii=False, default=str)


def actor_summary(actor: Mapping[str, Any]) -> dict[str, Any]:
    """What an item keeps of an actor: its first ``MAX_ACTOR_FIELDS`` fields with a plain value
    (text up to ``MAX_ACTOR_TEXT`` characters, a number, a boolean, null). A trigger's actor may be
    any object up to the request's size; an item keeps five of them, and every feed page shows them."""
    kept: dict[str, Any] = {}
    for key, value in actor.items():
        if len(kept) == MAX_ACTOR_FIELDS:
            break
        if isinstance(value, str) and len(value) > MAX_ACTOR_TEXT:
            continue
        if value is None or isinstance(value, str | int | float | bool):
            kept[str(key)] = value
    return kept


def merge_actors(previous: Sequence[Any] | None, actor: Any, limit: int = MAX_ACTORS) -> list[dict[str, Any]]:
    """The item's actors after an event by ``actor`` (None: the event names nobody): newest first,
    each actor once (``actor_summary``), at most ``limit``."""
    kept = [dict(a) for a in previous or () if isinstance(a, Mapping)]
    if isinstance(actor, Mapping):
        new = actor_summary(actor)
        kept = [new] + [a for a in kept if _identity(a) != _identity(new)]
    return kept[:limit]


def first_actors(actor: Any) -> list[dict[str, Any]]:
    """The actors of an item made of one event."""
    return merge_actors(None, actor)


def merge_variables(count: int, actors: Sequence[Mapping[str, Any]], locale: str | None) -> dict[str, Any]:
    """``count`` and ``actors`` as a template of ``locale`` sees them."""
    return {COUNT: count, ACTORS: Actors([dict(a) for a in actors], separator_for(locale))}


# -- the key ----------------------------------------------------------------------------------------


def key_problem(template: str) -> str | None:
    """Why a merge key template cannot be saved, or None. The key is rendered once per notification
    from the trigger's data, so it cannot read ``recipient``."""
    try:
        validate_fields({"key": template})
        check_limits({"key": template})
    except TemplateError as exc:
        return exc.message
    if uses_recipient({"key": template}):
        return "the merge key is rendered once per notification from its data: it cannot use 'recipient'"
    return None


def merge_key(template: str, data: Mapping[str, Any]) -> str:
    """The digest that identifies the events to merge: the key rendered with the trigger's data.
    Invalid naming ``data.<var>`` for each variable the data lacks."""
    try:
        rendered = render_fields({"key": template}, data)["key"]
    except MissingVariables as exc:
        errors = [(f"data.{v}", f"missing variable '{v}' (merge key of the type)") for v in exc.variables]
        raise Invalid(errors) from exc
    except TemplateError as exc:
        field = f"data.{exc.variable}" if exc.variable else "data"
        raise Invalid([(field, f"{exc.message} (merge key of the type)")]) from exc
    return key_digest(str(rendered))


def key_digest(rendered: str) -> str:
    """64 hex characters for a rendered key of any length, lone surrogates and NULs included."""
    return hashlib.sha256(rendered.encode("utf-8", "surrogatepass")).hexdigest()
