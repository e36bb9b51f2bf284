"""Merging in the inbox (issue 8, rule 4): the in-app items of a type with ``merge`` are written
through here, by the trigger (inline recipients) and by fan-out chunks.

At trigger time (``prepare_merge``) the type's merge key is rendered with the trigger's data (a
missing variable is a 422 naming ``data.<var>``) and stored with the notification, under
``rendered["$merge"]``, together with the in-app templates that read ``${count}`` or ``${actors}``:
a fan-out chunk that runs later merges with the same key and re-renders with the same templates.
The trigger renders every template with ``count`` 1 and its own actor (``MergingData``).

``write_items`` then inserts each recipient's item, or merges it into that user's open item of the
same type and key (store/merge.py, atomic on both databases) and re-renders a merged item with its
count and latest actors. A merged item keeps its id and moves to the top of the feed; realtime sends
it as ``inbox.updated`` (engine/streams.py: an item written with a count above 1 was merged).

The item belongs to the newest notification merged into it (its ``notification_id``, data, actor and
target are that event's). The notification it belonged to before keeps a trace: an in-app line in
its deliveries, ``delivered`` with ``reason: "merged"`` naming the item and the newer notification.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import DeliveryStatus, Priority
from herald.core.errors import TemplateError
from herald.core.ids import new_ids
from herald.core.locales import pick_locale
from herald.core.merge import MERGE_VARIABLES, first_actors, merge_actors, merge_key, merge_variables
from herald.core.rules import SkipReason
from herald.core.templates import (
    RECIPIENT_RENDER_SECONDS,
    has_recipient_fields,
    prepare_fields,
    render_for_recipient,
    uses_variables,
)
from herald.engine import metrics
from herald.engine.expand import INAPP, MERGE, _inbox_variant
from herald.store import merge as merge_store
from herald.store import users as user_store

log = logging.getLogger(__name__)

RERENDERED = ("title", "summary", "body")
"""What a merge renders again (links and actions are the newest event's, as it rendered them)."""
RENDER_ON_LOOP = 20
"""Up to this many renders happen on the event loop; more go to a worker thread."""


@dataclass(frozen=True)
class MergeSpec:
    key: str
    """The digest of the rendered merge key (core/merge.py ``merge_key``)."""
    window_seconds: int
    sources: Mapping[str, Mapping[str, Any]]
    """``{locale: title, summary and body of the in-app template}`` where they read ``count`` or ``actors``."""


def prepare_merge(
    merge_rule: Mapping[str, Any] | None,
    templates: Mapping[str, Mapping[str, Mapping[str, Any]]],
    channels: Sequence[str],
    data: Mapping[str, Any],
) -> dict[str, Any] | None:
    """What a trigger stores under ``rendered["$merge"]``: None unless its type merges
    (``merge_rule``, the type's ``merge``) and it writes in-app items. Invalid naming ``data.<var>``
    when the data lacks a variable of the key."""
    if not merge_rule or INAPP not in channels:
        return None
    sources = {}
    for locale, fields in templates.get(INAPP, {}).items():
        texts = {k: fields[k] for k in RERENDERED if k in fields}
        if uses_variables(texts, MERGE_VARIABLES):
            sources[locale] = texts
    return {
        "key": merge_key(str(merge_rule["key"]), data),
        "window_seconds": int(merge_rule["window_seconds"]),
        "sources": sources,
    }


class MergingData(dict[str, Any]):
    """A merging type's trigger data as its templates see it at trigger time: with ``count`` 1 and
    the trigger's actor as ``actors``, printed for each template's locale (``template_context``)."""

    def __init__(self, data: Mapping[str, Any], actor: Any) -> None:
        super().__init__(data)
        self.actors = first_actors(actor)

    def for_locale(self, locale: str | None) -> dict[str, Any]:
        return {**self, **merge_variables(1, self.actors, locale)}


def template_context(data: Mapping[str, Any], locale: str | None) -> Mapping[str, Any]:
    """What the templates of ``locale`` render with at trigger time (``MergingData`` or plain data)."""
    return data.for_locale(locale) if isinstance(data, MergingData) else data


def spec_of(notification: Mapping[str, Any]) -> MergeSpec | None:
    """The merge of a notification whose items merge, else None."""
    stored = (notification.get("rendered") or {}).get(MERGE)
    if not stored:
        return None
    return MergeSpec(str(stored["key"]), int(stored["window_seconds"]), stored.get("sources") or {})


def merges(notification: Mapping[str, Any]) -> bool:
    return MERGE in (notification.get("rendered") or {})


# -- writing ---------------------------------------------------------------------------------------


@dataclass
class _Row:
    """One recipient's item as first written (count 1), and what a merge needs to re-render it."""

    row: dict[str, Any]
    locale: str | None
    """Of the template chosen for the recipient."""
    profile: Mapping[str, Any] | None


async def write_items(
    conn: AsyncConnection,
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    *,
    now: datetime,
    default_locale: str,
    expires_at: datetime | None,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> int:
    """The in-app items of ``recipients`` (dicts with ``id`` and ``locale``), each inserted or merged
    into the recipient's open item of the same type and key; how many merged. ``profiles``: the
    recipients' rows when the template uses ``recipient`` (read here when not given)."""
    spec = spec_of(notification)
    assert spec is not None, "write_items is for notifications whose type merges"
    if not recipients:
        return 0
    templates: dict[str, dict[str, Any]] = notification["rendered"].get(INAPP, {})
    personal = any(has_recipient_fields(t) for t in templates.values())
    if personal and profiles is None:
        profiles = await user_store.get_users(conn, [u["id"] for u in recipients])
    args = (notification, spec, recipients, now, default_locale, expires_at, profiles or {})
    rows = await _maybe_in_thread(len(recipients) if personal else 0, _first_rows, *args)
    placed = await merge_store.upsert_items(conn, [r.row for r in rows], now=now)
    merged = [(r, placed[r.row["user_id"]]) for r in rows if placed[r.row["user_id"]].merged(r.row["id"])]
    if merged:
        renders = sum(1 for r, _ in merged if r.locale in spec.sources)
        updates = await _maybe_in_thread(renders, _merged_updates, notification, spec, merged)
        await merge_store.update_merged(conn, updates)
        superseded = _superseded(notification, merged, now)
        await merge_store.record_superseded(conn, superseded)
        metrics.count_written(superseded)
    return len(merged)


async def _maybe_in_thread(renders: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on the loop when it renders little, else in a worker thread."""
    if renders <= RENDER_ON_LOOP:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def _first_rows(
    notification: dict[str, Any],
    spec: MergeSpec,
    recipients: Sequence[dict[str, Any]],
    now: datetime,
    default_locale: str,
    expires_at: datetime | None,
    profiles: Mapping[str, Mapping[str, Any]],
) -> list[_Row]:
    """Each recipient's item with count 1: the trigger's rendering in their locale (finished for
    them when the template uses ``recipient``)."""
    templates: dict[str, dict[str, Any]] = notification["rendered"].get(INAPP, {})
    actors = first_actors(notification.get("actor"))
    shared = {
        "notification_id": notification["id"],
        "type_key": notification["type_key"],
        "category": notification["category"],
        "data": notification["data"],
        "actor": notification["actor"],
        "target": notification["target"],
        "read_at": None,
        "seen_at": None,
        "archived_at": None,
        "created_at": now,
        "expires_at": expires_at,
        "count": 1,
        "actors": actors,
        "merge_key": spec.key,
        "merge_until": now + timedelta(seconds=spec.window_seconds),
    }
    out: list[_Row] = []
    failed = 0
    for user, item_id in zip(recipients, new_ids("itm", len(recipients)), strict=True):
        profile = profiles.get(user["id"])
        user_locale = (profile or user).get("locale")
        chosen = pick_locale(templates.keys(), user_locale, default_locale)
        content: Mapping[str, Any] = templates[chosen] if chosen else {}
        if has_recipient_fields(content):
            context = {**notification["data"], **merge_variables(1, actors, chosen)}
            person = profile or {"id": user["id"], "locale": user.get("locale")}
            content, errors = render_for_recipient(content, context, person, seconds=RECIPIENT_RENDER_SECONDS)
            failed += bool(errors)
        variant = _inbox_variant(notification, content, user_locale, default_locale)
        out.append(_Row({**shared, **variant, "id": item_id, "user_id": user["id"]}, chosen, profile))
    if failed:
        log.warning("notification %s: %d in-app items rendered with empty fields", notification["id"], failed)
    return out


def _merged_updates(
    notification: dict[str, Any],
    spec: MergeSpec,
    merged: Sequence[tuple[_Row, merge_store.Placed]],
) -> list[dict[str, Any]]:
    """For each item merged into: its actors with this event's first, and its content re-rendered
    with its count and those actors (the newest event's rendering when the template reads neither)."""
    updates = []
    for first, placed in merged:
        actors = merge_actors(placed.actors, notification.get("actor"))
        content = {k: first.row[k] for k in _CONTENT}
        sources = spec.sources.get(first.locale or "")
        if sources is not None:
            content.update(_rerendered(notification, sources, first, placed.count, actors))
        updates.append({"id": placed.item_id, "notification_id": notification["id"], "actors": actors, **content})
    return updates


def _superseded(
    notification: dict[str, Any], merged: Sequence[tuple[_Row, merge_store.Placed]], now: datetime
) -> list[dict[str, Any]]:
    """The trace of each notification whose item this event took over: its in-app line, delivered
    and then merged (``GET /v1/notifications/{id}`` lists it as a delivery, ``reason: "merged"``)."""
    earlier = [placed for _, placed in merged if placed.notification_id != notification["id"]]
    rank = Priority(notification["priority"]).rank
    return [
        {
            "id": delivery_id,
            "notification_id": placed.notification_id,
            "user_id": placed.user_id,
            "channel": INAPP,
            "account": None,
            "status": DeliveryStatus.DELIVERED.value,
            "reason": SkipReason.MERGED.value,
            "reason_detail": (
                f"its inbox item {placed.item_id} was merged with a later event (notification"
                f" {notification['id']}) and now stands for {placed.count} events"
            ),
            "priority": rank,
            "attempts": 0,
            "last_error": None,
            "provider_message_id": None,
            "next_attempt_at": None,
            "lease_until": None,
            "lease_owner": None,
            "expires_at": None,
            "created_at": now,
            "updated_at": now,
        }
        for placed, delivery_id in zip(earlier, new_ids("dlv", len(earlier)), strict=True)
    ]


def _rerendered(
    notification: dict[str, Any], sources: Mapping[str, Any], first: _Row, count: int, actors: list[dict[str, Any]]
) -> dict[str, Any]:
    """Title, summary and body for ``count`` events by ``actors``; nothing when the template fails
    with them (it rendered for the first event: that rendering is kept, and the failure logged)."""
    context = {**notification["data"], **merge_variables(count, actors, first.locale)}
    try:
        prepared = prepare_fields(sources, context, seconds=RECIPIENT_RENDER_SECONDS)
        if has_recipient_fields(prepared):
            person = first.profile or {"id": first.row["user_id"], "locale": first.locale}
            prepared, errors = render_for_recipient(prepared, context, person, seconds=RECIPIENT_RENDER_SECONDS)
            if errors:
                raise errors[0]
    except TemplateError as exc:
        log.warning("notification %s: merged item not re-rendered: %s", notification["id"], exc.message)
        return {}
    if "title" in prepared:
        prepared["title"] = prepared["title"] or notification["type_key"]
    return prepared


_CONTENT = ("title", "summary", "body", "action_url", "actions")
