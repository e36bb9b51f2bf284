"""Accepting notifications: validate, render, and write each with all its work in one transaction.

``trigger`` accepts one notification; the batch endpoint accepts many with ``prepare_many`` and
one ``write_prepared`` for all of them. Either way there are three steps:

1. prepare: the type and its templates come from the process's catalog cache (no statement unless
   it is cold, engine/catalog_cache.py), then the checks, the rendering (off the event loop) and
   the notification row;
2. write, in the caller's transaction: inline profiles, the notification rows with their inbox
   items and any new bare recipients (one statement on PostgreSQL), delivery rows for the other
   channels, fan-out jobs for audiences and scheduled sends; recipients who turned the inbox off
   for the type get a skipped ``inapp`` delivery instead of an item (one more indexed read, made
   only while someone did: engine/preferences.py);
3. after the commit: metrics, the realtime word that items were written, the worker woken.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.actions import labels_need_locale, trigger_action_problems, with_trigger_actions
from herald.core.enums import NotificationStatus, Priority
from herald.core.errors import Invalid, TemplateError
from herald.core.ids import new_ids
from herald.core.links import rendered_link_problems
from herald.core.templates import RECIPIENT_FIELDS, MissingVariables, TemplateLimitError, prepare_fields
from herald.engine import live, metrics
from herald.engine.accounts import check_account_choice
from herald.engine.catalog_cache import CatalogEntry
from herald.engine.expand import INAPP, MERGE, collect_inbox_items, delivery_expiry, delivery_rows, needs_profiles
from herald.engine.merge import MergingData, merges, prepare_merge, template_context
from herald.engine.merge import write_items as write_merging_items
from herald.engine.preferences import InappAsk, inapp_check_needed, opted_out, skipped_inapp_rows
from herald.engine.service import Herald
from herald.store import deliveries as delivery_store
from herald.store import jobs as job_store
from herald.store import notifications as notification_store
from herald.store import users
from herald.store.notifications import InboxWrite
from herald.store.types import utcnow

MAX_INLINE_RECIPIENTS = 10_000
PROFILE_KEYS = ("name", "email", "phone", "locale", "timezone", "channels", "tags", "data")


@dataclass
class TriggerRequest:
    type: str
    to: list[str | dict[str, Any]] | None = None
    audience: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    actor: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    send_at: Any = None
    expires_at: Any = None
    channels: list[str] | None = None
    accounts: dict[str, list[str]] | None = None
    """``{channel: [account name, ...]}``: send through these accounts (else the type's, else the default)."""
    actions: list[dict[str, Any]] | None = None
    """Buttons on each inbox item (core/actions.py); they replace the in-app template's ``actions``."""
    cancellation_key: str | None = None
    """Stored on the notification: ``POST /v1/notifications/cancel`` with it cancels what is unsent."""


@dataclass(frozen=True)
class Accepted:
    id: str
    status: str
    recipients: int | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "recipients": self.recipients}


OnCommit = Callable[[AsyncConnection, Accepted], Awaitable[None]]


def _recipients(req: TriggerRequest) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Ordered unique ids, and the inline profiles given with some of them."""
    if req.to is None and req.audience is None:
        raise Invalid([("to", "give 'to' (a list of user ids) or 'audience'")])
    if req.to is not None and req.audience is not None:
        raise Invalid([("to", "give either 'to' or 'audience', not both")])
    if req.audience is not None:
        return [], {}
    assert req.to is not None
    if not req.to:
        raise Invalid([("to", "must name at least one recipient")])
    if len(req.to) > MAX_INLINE_RECIPIENTS:
        raise Invalid([("to", f"at most {MAX_INLINE_RECIPIENTS} inline recipients; use an audience")])
    ids: dict[str, None] = {}
    profiles: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(req.to):
        if isinstance(entry, str):
            uid = entry
        else:
            uid = entry.get("id")  # type: ignore[assignment]
            extra = {k: v for k, v in entry.items() if k in PROFILE_KEYS}
            if extra and isinstance(uid, str):
                profiles[uid] = extra
        if not isinstance(uid, str) or not uid or len(uid) > 200:
            raise Invalid([(f"to.{i}", "a user id is a non-empty string of at most 200 characters")])
        ids[uid] = None
    return list(ids), profiles


def missing_templates(
    herald: Herald, type_key: str, channels: list[str], templates: dict[str, Any], only: set[str] | None = None
) -> list[tuple[str, str]]:
    """``(channels.N, why)`` for each channel that is unknown or lacks the template it needs to send
    (every channel, or only those in ``only``)."""
    errors = []
    for i, channel in enumerate(channels):
        kind = herald.channels.get(channel)
        if only is not None and channel not in only:
            continue
        if kind is None:
            errors.append((f"channels.{i}", f"unknown channel '{channel}'"))
        elif kind.routes_over and not any(k in templates for k in kind.routes_over):
            wanted = " or ".join(kind.routes_over)
            errors.append((f"channels.{i}", f"type '{type_key}' needs a template for {wanted} to send '{channel}'"))
        elif kind.requires_template and channel not in templates:
            errors.append((f"channels.{i}", f"type '{type_key}' has no template for channel '{channel}'"))
    return errors


def render_all(
    templates: dict[str, dict[str, dict[str, Any]]], channels: list[str], data: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every template of the chosen channels, in every locale, rendered once (fields that use
    ``recipient`` are kept for rendering per recipient); or Invalid naming every missing variable
    at once, and any template over a limit. CPU-bound, up to a second: callers on the event loop
    use ``render_nonblocking``."""
    rendered: dict[str, dict[str, dict[str, Any]]] = {}
    missing: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    for channel in channels:
        for locale, fields in templates.get(channel, {}).items():
            where = f"template {channel}/{locale}"
            try:
                context = template_context(data, locale)
                rendered.setdefault(channel, {})[locale] = prepared = prepare_fields(fields, context)
                if channel == INAPP:
                    bad_links = rendered_link_problems(prepared)
                    errors += [(f"templates.{channel}.{path}", f"{problem} ({where})") for path, problem in bad_links]
            except MissingVariables as exc:
                for name in exc.variables:
                    missing.setdefault(name, where)
            except TemplateLimitError as exc:
                errors.append((f"templates.{channel}.{exc.field}", f"{exc.message} ({where}; limit: {exc.limit})"))
            except TemplateError as exc:
                field_name = f"data.{exc.variable}" if exc.variable else "data"
                errors.append((field_name, f"{exc.message} ({where})"))
    if missing or errors:
        # sorted: the stored field order is the database's (PostgreSQL's JSONB has its own)
        raise Invalid([_missing_error(name, where) for name, where in sorted(missing.items())] + errors)
    return rendered


def _missing_error(name: str, where: str) -> tuple[str, str]:
    if name.startswith("recipient."):
        known = ", ".join(RECIPIENT_FIELDS)
        return name, f"a recipient has no '{name.removeprefix('recipient.')}' (it has {known}) ({where})"
    return f"data.{name}", f"missing variable '{name}' ({where})"


QUICK_RENDER_SECONDS = 0.005
"""How long a render may run on the event loop before it is handed to a worker thread."""
YIELD_EVERY_SECONDS = 0.002
"""How long a batch renders on the event loop before letting other requests run."""


def render_quick(
    templates: dict[str, dict[str, dict[str, Any]]], channels: list[str], data: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]] | None:
    """``render_all``'s result when it takes under ``QUICK_RENDER_SECONDS`` and succeeds, else None.

    The common template (``${amount}`` and a few filters) renders in tens of microseconds: less
    than handing it to a thread, and far less than a thread waiting for the GIL held by a busy
    event loop (up to the 5 ms switch interval, per render). A render over the time, or one that
    fails, stops early and is done again by ``render_all`` with its full second: the answer, error
    messages included, is always ``render_all``'s (the same output, since only the clock differs).
    """
    deadline = time.monotonic() + QUICK_RENDER_SECONDS
    rendered: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        for channel in channels:
            for locale, fields in templates.get(channel, {}).items():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                context = template_context(data, locale)
                rendered.setdefault(channel, {})[locale] = prepared = prepare_fields(fields, context, seconds=left)
                if channel == INAPP and rendered_link_problems(prepared):
                    return None  # render_all names them
    except TemplateError:
        return None
    return rendered


async def render_nonblocking(
    templates: dict[str, dict[str, dict[str, Any]]], channels: list[str], data: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``render_all`` without stalling the event loop for more than ``QUICK_RENDER_SECONDS``:
    on the loop when it is quick, else in a worker thread (a slow template is bounded at a second)."""
    quick = render_quick(templates, channels, data)
    if quick is not None:
        return quick
    return await asyncio.to_thread(render_all, templates, channels, data)


# -- prepare -------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A trigger that passed every check, rendered, with the row it writes (``write_prepared``)."""

    notification: dict[str, Any]
    recipient_ids: list[str]
    profiles: dict[str, dict[str, Any]]
    inline: bool
    """Written now (items and deliveries in the same transaction), not by a fan-out job."""
    scheduled: bool
    rank: int
    expires_at: datetime | None
    """Of its inbox items and deliveries (the notification's, else its type's TTL)."""
    localized: bool
    """Its in-app content depends on the recipient's locale (the type has several)."""
    accepted: Accepted
    inapp_check: bool = False
    """Someone turned the inbox off for its type: ``write_prepared`` asks which recipients did
    (engine/preferences.py); False costs nothing."""
    inapp_off: frozenset[str] = frozenset()
    """Its recipients who turned the inbox off for its type: no item, a skipped ``inapp`` delivery."""


@dataclass
class _Checked:
    channels: list[str]
    render_channels: list[str]
    recipient_ids: list[str]
    profiles: dict[str, dict[str, Any]]
    accounts: dict[str, list[str]] | None = field(default=None)
    merge: dict[str, Any] | None = None
    """Its items merge (engine/merge.py): the rendered key, the window and the templates to re-render."""

    def render_data(self, req: TriggerRequest) -> dict[str, Any]:
        """What its templates render with: a merging type's have ``count`` and ``actors`` too."""
        return req.data if self.merge is None else MergingData(req.data, req.actor)


def _requested(req: TriggerRequest, entry: CatalogEntry) -> list[str]:
    return list(req.channels if req.channels is not None else entry.type["channels"])


def _unknown_type(req: TriggerRequest) -> Invalid:
    return Invalid([("type", f"unknown notification type '{req.type}'")])


def _check(herald: Herald, req: TriggerRequest, entry: CatalogEntry) -> _Checked:
    """The checks after the type's and the accounts': channels and their templates, times, recipients."""
    channels = list(dict.fromkeys(_requested(req, entry)))
    errors = missing_templates(herald, req.type, channels, entry.templates)
    errors += trigger_action_problems(req.actions, channels)
    if not channels:
        errors.append(("channels", "the notification would go nowhere: no channels"))
    if errors:
        raise Invalid(errors)
    if req.send_at is not None and req.expires_at is not None and req.expires_at <= req.send_at:
        raise Invalid([("expires_at", "must be after send_at")])
    recipient_ids, profiles = _recipients(req)
    routed = [k for c in channels for k in herald.channels[c].routes_over]
    merge = prepare_merge(entry.type.get("merge"), entry.templates, channels, req.data)
    return _Checked(channels, list(dict.fromkeys(channels + routed)), recipient_ids, profiles, merge=merge)


def _build(
    herald: Herald,
    req: TriggerRequest,
    entry: CatalogEntry,
    checked: _Checked,
    rendered: dict[str, dict[str, dict[str, Any]]],
    *,
    notification_id: str,
    now: datetime,
) -> Prepared:
    ntype = entry.type
    if req.actions is not None and INAPP in rendered:
        rendered = {**rendered, INAPP: with_trigger_actions(rendered[INAPP], req.actions)}
    if checked.merge is not None:  # stored with it: a fan-out chunk merges with the same key later
        rendered = {**rendered, MERGE: checked.merge}
    scheduled = req.send_at is not None and req.send_at > now
    inline = (
        req.audience is None and not scheduled and len(checked.recipient_ids) <= herald.settings.inline_fanout_limit
    )
    count = len(checked.recipient_ids) if req.audience is None else None
    priority = Priority(ntype["priority"])
    notification = {
        "id": notification_id,
        "type_key": req.type,
        "category": ntype["category"],
        "priority": priority.value,
        "status": (
            NotificationStatus.PROCESSED
            if inline
            else NotificationStatus.SCHEDULED
            if scheduled
            else NotificationStatus.EXPANDING
        ).value,
        "channels": checked.channels,
        "data": req.data,
        "actor": req.actor,
        "target": req.target,
        "rendered": rendered,
        "audience": req.audience,
        "accounts": {**(ntype.get("accounts") or {}), **(checked.accounts or {})} or None,
        "recipients": count,
        "send_at": req.send_at,
        "expires_at": req.expires_at,
        "created_at": now,
        "updated_at": now,
        "cancellation_key": req.cancellation_key,
        "schedule_id": None,  # set for a schedule's occurrence (engine/schedules.py)
        "occurrence_at": None,
    }
    return Prepared(
        notification=notification,
        recipient_ids=checked.recipient_ids,
        profiles=checked.profiles,
        inline=inline,
        scheduled=scheduled,
        rank=priority.rank,
        expires_at=delivery_expiry(notification, ntype["ttl_seconds"]),
        localized=entry.inapp_needs_locale or labels_need_locale(req.actions),
        accepted=Accepted(notification_id, "accepted", count),
    )


async def prepare(herald: Herald, req: TriggerRequest, *, now: datetime) -> Prepared:
    """One trigger, checked and rendered; Invalid naming every field that is wrong."""
    entry = await herald.catalog.get(req.type)
    if entry is None:
        raise _unknown_type(req)
    accounts = None
    if req.accounts is not None:
        async with herald.db.read() as conn:
            accounts = await check_account_choice(
                conn, herald.box, herald.channels, req.accounts, _requested(req, entry)
            )
    checked = _check(herald, req, entry)
    checked.accounts = accounts
    rendered = await render_nonblocking(entry.templates, checked.render_channels, checked.render_data(req))
    prepared = _build(herald, req, entry, checked, rendered, notification_id=new_ids("ntf", 1)[0], now=now)
    prepared.inapp_check = prepared.inline and await inapp_check_needed(herald, entry.type, prepared.notification)
    return prepared


async def prepare_many(herald: Herald, reqs: Sequence[TriggerRequest], *, now: datetime) -> list[Prepared | Invalid]:
    """``prepare`` for each request, in order: a Prepared, or the Invalid that ``trigger`` would raise.

    The types come from the cache once each, the accounts are checked on one connection, and all
    the rendering happens in one trip to a worker thread. Ids ascend in the requests' order, so a
    user's feed lists a batch's items in the order they were sent.
    """
    entries: dict[str, CatalogEntry | None] = {}
    for key in dict.fromkeys(r.type for r in reqs):
        entries[key] = await herald.catalog.get(key)
    results: list[Prepared | Invalid | None] = [None] * len(reqs)
    accounts: dict[int, dict[str, list[str]]] = {}
    with_accounts = [i for i, r in enumerate(reqs) if r.accounts is not None and entries[r.type] is not None]
    if with_accounts:
        async with herald.db.read() as conn:
            for i in with_accounts:
                req, entry = reqs[i], entries[reqs[i].type]
                assert req.accounts is not None and entry is not None
                try:
                    accounts[i] = await check_account_choice(
                        conn, herald.box, herald.channels, req.accounts, _requested(req, entry)
                    )
                except Invalid as exc:
                    results[i] = exc
    checked: list[tuple[int, CatalogEntry, _Checked]] = []
    for i, req in enumerate(reqs):
        entry = entries[req.type]
        if results[i] is not None:
            continue
        if entry is None:
            results[i] = _unknown_type(req)
            continue
        try:
            one = _check(herald, req, entry)
        except Invalid as exc:
            results[i] = exc
            continue
        one.accounts = accounts.get(i)
        checked.append((i, entry, one))
    rendered = await _render_many(
        [(entry.templates, one.render_channels, one.render_data(reqs[i])) for i, entry, one in checked]
    )
    ids = sorted(new_ids("ntf", len(checked)))
    for (i, entry, one), result, notification_id in zip(checked, rendered, ids, strict=True):
        results[i] = (
            result
            if isinstance(result, Invalid)
            else _build(herald, reqs[i], entry, one, result, notification_id=notification_id, now=now)
        )
        if isinstance(built := results[i], Prepared) and built.inline:
            built.inapp_check = await inapp_check_needed(herald, entry.type, built.notification)
    return [r for r in results if r is not None]


async def _render_many(
    jobs: Sequence[tuple[dict[str, dict[str, dict[str, Any]]], list[str], dict[str, Any]]],
) -> list[dict[str, dict[str, dict[str, Any]]] | Invalid]:
    """Each job rendered as ``render_nonblocking`` would, letting other requests run every
    ``YIELD_EVERY_SECONDS``; the slow ones (and failures) together in one worker thread."""
    out: list[dict[str, dict[str, dict[str, Any]]] | Invalid | None] = []
    slow: list[int] = []
    pause_at = time.monotonic() + YIELD_EVERY_SECONDS
    for i, (templates, channels, data) in enumerate(jobs):
        quick = render_quick(templates, channels, data)
        out.append(quick)
        if quick is None:
            slow.append(i)
        if time.monotonic() > pause_at:
            await asyncio.sleep(0)
            pause_at = time.monotonic() + YIELD_EVERY_SECONDS
    if slow:
        for i, result in zip(slow, await asyncio.to_thread(_render_each, [jobs[i] for i in slow]), strict=True):
            out[i] = result
    return [r for r in out if r is not None]


def _render_each(
    jobs: Sequence[tuple[dict[str, dict[str, dict[str, Any]]], list[str], dict[str, Any]]],
) -> list[dict[str, dict[str, dict[str, Any]]] | Invalid]:
    out: list[dict[str, dict[str, dict[str, Any]]] | Invalid] = []
    for templates, channels, data in jobs:
        try:
            out.append(render_all(templates, channels, data))
        except Invalid as exc:
            out.append(exc)
    return out


# -- write ---------------------------------------------------------------------------------------


async def write_prepared(herald: Herald, conn: AsyncConnection, prepared: Sequence[Prepared], *, now: datetime) -> None:
    """Everything ``prepared`` writes, in the caller's transaction (``now``: when they were prepared)."""
    if not prepared:
        return
    profiles: dict[str, dict[str, Any]] = {}
    for p in prepared:  # merged in order: what upserting each entry's profiles in turn would leave
        for uid, fields in p.profiles.items():
            profiles.setdefault(uid, {}).update(fields)
    for uid, fields in profiles.items():
        await users.put_profile(conn, uid, fields)

    inline = [p for p in prepared if p.inline]
    with_items = [p for p in inline if INAPP in p.notification["channels"]]
    personal = [p for p in with_items if needs_profiles(p.notification)]
    localized = [p for p in with_items if p.localized and p not in personal]
    recipient_ids = list(dict.fromkeys(uid for p in inline for uid in p.recipient_ids))
    rows: dict[str, dict[str, Any]] = {}
    locales: dict[str, str | None] = {}
    ensure: list[str] = []
    if personal:  # the template renders ``recipient``: the whole profile
        await users.ensure_users(conn, recipient_ids)
        wanted = list(dict.fromkeys(u for p in personal + localized for u in p.recipient_ids))
        rows = await users.get_users(conn, wanted)
        locales = {uid: row.get("locale") for uid, row in rows.items()}
    elif localized:  # the content depends on the locale: read it (and create the new recipients)
        wanted = list(dict.fromkeys(u for p in localized for u in p.recipient_ids))
        locales = await users.ensure_users_and_locales(conn, recipient_ids, wanted)
    else:  # nobody's content depends on who they are: new recipients are created with the rows
        ensure = recipient_ids

    items = InboxWrite()
    deliveries: list[dict[str, Any]] = []
    item_ids = new_ids("itm", sum(len(p.recipient_ids) for p in with_items))
    if len(with_items) > 1:
        item_ids.sort()  # ascending in the batch's order (one millisecond, random tails)
    taken = 0
    merging: list[tuple[Prepared, list[dict[str, Any]]]] = []
    await _find_inapp_opt_outs(conn, inline)
    for p in inline:
        recipients = [{"id": uid, "locale": locales.get(uid)} for uid in p.recipient_ids]
        inbox = [r for r in recipients if r["id"] not in p.inapp_off] if p.inapp_off else recipients
        if INAPP in p.notification["channels"] and merges(p.notification):
            merging.append((p, inbox))  # written after the plain items: insert or merge
        elif INAPP in p.notification["channels"]:
            await collect_inbox_items(
                items,
                p.notification,
                inbox,
                item_ids[taken : taken + len(inbox)],
                now=now,
                default_locale=herald.settings.default_locale,
                expires_at=p.expires_at,
                profiles=rows,
            )
            taken += len(inbox)
        deliveries.extend(delivery_rows(p.notification, recipients, now=now, expires_at=p.expires_at))
        deliveries.extend(skipped_inapp_rows(p.notification, p.inapp_off, now=now, expires_at=p.expires_at))
    await notification_store.insert_accepted(conn, [p.notification for p in prepared], items, ensure_users=ensure)
    for p, recipients in merging:
        await write_merging_items(
            conn,
            p.notification,
            recipients,
            now=now,
            default_locale=herald.settings.default_locale,
            expires_at=p.expires_at,
            profiles=rows if needs_profiles(p.notification) else None,
        )
    if deliveries:
        await delivery_store.insert_deliveries(conn, deliveries)
        metrics.count_written(deliveries)
    for p in prepared:
        if not p.inline:
            await _enqueue_fanout(conn, p, now)


async def _find_inapp_opt_outs(conn: AsyncConnection, inline: Sequence[Prepared]) -> None:
    """Set ``inapp_off`` of those that need it (``inapp_check``): one indexed read for all of them,
    none when nobody turned the inbox off for their types (the usual case)."""
    asking = [p for p in inline if p.inapp_check]
    if not asking:
        return
    asks = [InappAsk(p.notification["type_key"], p.notification["category"], p.recipient_ids) for p in asking]
    for p, off in zip(asking, await opted_out(conn, asks), strict=True):
        p.inapp_off = frozenset(off)


async def _enqueue_fanout(conn: AsyncConnection, p: Prepared, now: datetime) -> None:
    n = p.notification
    payload = {
        "notification_id": n["id"],
        "recipients": p.recipient_ids if n["audience"] is None else None,
        "audience": n["audience"],
        "offset": 0,
        "after": None,
        "expanded": 0,
    }
    run_at = n["send_at"] if p.scheduled else now
    await job_store.enqueue_job(conn, "fanout", payload, run_at=run_at, now=now, priority=p.rank)


def after_commit(herald: Herald, prepared: Sequence[Prepared]) -> None:
    """Once ``prepared`` is committed: metrics, the realtime word for inline in-app items, the worker woken."""
    by_type: dict[str, int] = {}
    for p in prepared:
        n = p.notification
        by_type[n["type_key"]] = by_type.get(n["type_key"], 0) + 1
        if p.inline and INAPP in n["channels"]:
            receivers = [u for u in p.recipient_ids if u not in p.inapp_off] if p.inapp_off else p.recipient_ids
            metrics.inbox_items_written.inc(len(receivers))
            live.items_written(herald, n["id"], n["created_at"], receivers)
    for type_key, count in by_type.items():
        metrics.notifications_accepted.labels(type_key).inc(count)
    if prepared:
        herald.wake_worker()


def one_statement(herald: Herald, p: Prepared) -> bool:
    """Whether ``write_prepared`` writes ``p`` in a single statement: on PostgreSQL, an in-app-only
    notification written now, with no inline profiles and content that depends on no recipient's
    profile or locale (the notification, its items and any new bare users: ``insert_accepted``)."""
    n = p.notification
    return (
        herald.db.is_postgres
        and p.inline
        and not p.profiles
        and not p.localized
        and n["channels"] == [INAPP]
        and not needs_profiles(n)
        and MERGE not in n["rendered"]  # its items merge: a statement of their own, then a render
        and not p.inapp_check  # who turned the inbox off is read first
    )


async def trigger(herald: Herald, req: TriggerRequest, *, on_commit: OnCommit | None = None) -> Accepted:
    """Accept one notification: Invalid naming every field that is wrong, else it is committed with
    all its work (``on_commit`` runs inside that transaction, last)."""
    now = utcnow()
    prepared = await prepare(herald, req, now=now)
    if on_commit is None and one_statement(herald, prepared):
        # a single statement is its own transaction: no BEGIN and COMMIT round trips around it
        async with herald.db.autocommit() as conn:
            await write_prepared(herald, conn, [prepared], now=now)
    else:
        async with herald.db.write() as conn:
            await write_prepared(herald, conn, [prepared], now=now)
            if on_commit is not None:
                await on_commit(conn, prepared.accepted)
    after_commit(herald, [prepared])
    return prepared.accepted
