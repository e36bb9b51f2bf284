"""Digests (rule 5): the worker stage that collects deliveries, and the job that sends each digest.

``collect`` runs after preferences and quiet hours, before routing: a delivery of a type with a
``digest`` rule, on one of its channels, joins the user's open digest for that type and channel
(store/digests.py) and ends ``skipped`` with reason ``digested``, its ``reason_detail`` naming the
digest's own notification. The first event of a window opens it: a digest row, its notification
(status ``collecting``, flagged with ``digest_id``) and its flush job due at the window's end;
the event that reaches ``max_items`` closes it and enqueues the flush due now.

The flush (``DigestJobHandler``) closes the window, renders ONE message from every event
(core/digests.py, off the event loop, bounded) and writes it as an ordinary pending delivery of
the digest's notification, in the transaction that marks the digest flushed and finishes the job:
a flush that crashes is retried and still writes one message; two flushes write one between them.
That delivery then goes through the worker like any other (at-least-once to the provider, with
its stable delivery id); the digest stage lets it pass (its notification has a ``digest_id``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.channels.base import Channel, Recipient
from herald.core.digests import DigestEvent, DigestWindow, digest_context, event_fields, render_digest
from herald.core.enums import NotificationStatus, Priority
from herald.core.locales import pick_locale
from herald.core.outcomes import Outcome
from herald.core.records import Profile
from herald.core.rules import SkipReason, TypeRules
from herald.engine.catalog_cache import CatalogEntry
from herald.engine.expand import delivery_rows
from herald.engine.fanout import LostLease
from herald.engine.service import Herald
from herald.store import deliveries as delivery_store
from herald.store import digests as digest_store
from herald.store import jobs as job_store
from herald.store import notifications as notification_store
from herald.store import users as user_store
from herald.store.db import Database
from herald.store.digests import CLOSING, Collected, Digest, NewEvent
from herald.store.records import Delivery, Job, Notification
from herald.store.types import utcnow

log = logging.getLogger(__name__)
READ_CHUNK = 200
"""Events' notifications are read this many at a time, each reduced to what the digest uses."""
EVENT_RENDER_SECONDS = 1.0
"""All the events' per-recipient fields (``${recipient.name}``) together get this long."""
MAX_ERROR_CHARS = 2000


# -- the stage ------------------------------------------------------------------------------------


async def collect(
    delivery: Delivery,
    notification: Notification,
    rules: TypeRules,
    user: Profile,
    channels: Mapping[str, Channel],
    db: Database,
    now: datetime,
) -> Outcome | None:
    """Collect ``delivery`` into its user's digest (an Outcome: skipped, digested), or None when no
    digest applies: no rule for its channel, a digest's own delivery, or a recipient the channel
    cannot reach (the stages after skip it with that reason; a digest would never reach them)."""
    rule = rules.digest
    if rule is None or notification.digest_id is not None or delivery.channel not in rule.channels:
        return None
    channel = channels.get(delivery.channel)
    if channel is None or channel.missing_address(Recipient(**vars(user))) is not None:
        return None
    event = NewEvent(
        delivery_id=delivery.id,
        notification_id=notification.id,
        user_id=delivery.user_id,
        type_key=notification.type_key,
        channel=delivery.channel,
        category=notification.category,
        priority=notification.priority,
        rank=delivery.priority,
        accounts=notification.accounts or None,
        occurred_at=notification.created_at,
    )
    async with db.write() as conn:
        collected = await digest_store.collect_event(
            conn,
            event,
            window_seconds=rule.window_seconds,
            max_items=rule.max_items,
            now=now,
            # on its first claim no earlier handling can have collected it (a crash leaves attempts > 1)
            maybe_collected=delivery.attempts > 1,
        )
    return Outcome.suppressed(SkipReason.DIGESTED, describe(collected))


def describe(collected: Collected) -> str:
    """The collected delivery's ``reason_detail``: which digest, and when it is sent."""
    digest = collected.digest
    where = f"collected into digest {digest.notification_id}"
    if collected.full:
        return f"{where} (event {digest.count} of {digest.max_items}: full, sent now)"
    if digest.status == digest_store.OPEN:
        return f"{where} (event {digest.count} of at most {digest.max_items}), sent at {digest.flush_at.isoformat()}"
    return f"{where}, sent when its window closed"


# -- the flush ------------------------------------------------------------------------------------


class DigestJobHandler:
    """Handles ``digest`` jobs: one digest's window ended (or it is full): send it."""

    kind = digest_store.JOB_KIND

    def __init__(self, herald: Herald) -> None:
        self._herald = herald

    async def __call__(self, job: Job, owner: str) -> None:
        await flush_digest(self._herald, job, owner=owner)


@dataclass(frozen=True)
class _Message:
    """What a flush writes: the digest notification's final status and content, and its delivery."""

    status: NotificationStatus
    priority: str
    rendered: dict[str, dict[str, dict[str, Any]]]
    data: dict[str, Any]
    error: str | None = None
    expires_at: datetime | None = None


async def flush_digest(herald: Herald, job: Job, *, owner: str, now: datetime | None = None) -> None:
    """Close the digest's window, render its message and write it as a delivery, once."""
    now = now or utcnow()
    digest_id = str(job.payload.get("digest_id"))
    async with herald.db.write() as conn:
        digest = await digest_store.close_digest(conn, digest_id, now)
    message = await _compose(herald, digest, now) if digest is not None and digest.status == CLOSING else None
    async with herald.db.write() as conn:
        sent = False
        if digest is not None and message is not None:
            sent = await _write_message(conn, digest, message, now)
        if not await job_store.finish_job(conn, job.id, owner=owner, status="done", now=now):
            await conn.rollback()
            raise LostLease(job.id)
    if sent:
        herald.wake_worker()


async def _write_message(conn: AsyncConnection, digest: Digest, message: _Message, now: datetime) -> bool:
    """The flush's one decisive step: closing → flushed, with the notification's content and its
    delivery; False (nothing written) when another flush got there first."""
    rows: list[dict[str, Any]] = []
    if message.status is NotificationStatus.PROCESSED:
        shape = {"id": digest.notification_id, "channels": [digest.channel], "priority": message.priority}
        rows = delivery_rows(shape, [{"id": digest.user_id}], now=now, expires_at=message.expires_at)
    flushed = await digest_store.mark_flushed(
        conn,
        digest,
        delivery_id=rows[0]["id"] if rows else None,
        status=message.status.value,
        rendered=message.rendered,
        data=message.data,
        error=message.error,
        now=now,
    )
    if flushed and rows:
        await delivery_store.insert_deliveries(conn, rows)
    return flushed and bool(rows)


# -- composing the message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """An event's notification, reduced to what the digest uses."""

    created_at: datetime
    data: dict[str, Any]
    prepared: dict[str, Any]
    """Its rendering on the digest's channel, in the recipient's locale (recipient fields unfinished)."""
    actor: dict[str, Any] | None
    target: dict[str, Any] | None


async def _compose(herald: Herald, digest: Digest, now: datetime) -> _Message:
    """Read the digest's events and render its message (in a worker thread: bounded, but up to a
    second or two of CPU for a large or hostile digest)."""
    default_locale = herald.settings.default_locale
    async with herald.db.read() as conn:
        own = await notification_store.get_notification(conn, digest.notification_id)
        users = await user_store.profiles(conn, [digest.user_id])
        profile = users.get(digest.user_id) or Profile(id=digest.user_id)
        events = await digest_store.events_of(conn, digest.id)
        sources: dict[str, _Source] = {}
        kinds = _kinds(herald.channels.get(digest.channel), digest.channel)
        ids = list(dict.fromkeys(e.notification_id for e in events))
        for start in range(0, len(ids), READ_CHUNK):
            found = await notification_store.notifications_by_id(conn, ids[start : start + READ_CHUNK])
            for nid, n in found.items():
                if n.status != NotificationStatus.CANCELLED:  # cancelled after it was collected: left out
                    sources[nid] = _reduce(n, kinds, profile, default_locale)
    priority = str(own["priority"]) if own else Priority.NORMAL.value
    collected = [(e.created_at, e.notification_id) for e in events if e.notification_id in sources]
    if own is None or own["status"] == NotificationStatus.CANCELLED or not collected:
        return _Message(NotificationStatus.CANCELLED, priority, {}, {"count": 0, "events": []})
    entry = await herald.catalog.get(digest.type_key)
    message = await asyncio.to_thread(
        _render, digest, entry, herald.channels.get(digest.channel), profile, sources, collected, default_locale
    )
    ttl = entry.type.get("ttl_seconds") if entry else None
    return _Message(
        NotificationStatus.PROCESSED,
        priority,
        message.rendered,
        message.data,
        error=message.error,
        expires_at=now + timedelta(seconds=ttl) if ttl else None,
    )


def _kinds(channel: Channel | None, name: str) -> list[str]:
    """The template keys a channel's content is under: its own, and its providers' (``sms``)."""
    return [name, *(channel.routes_over if channel else ())]


def _reduce(n: Notification, kinds: Sequence[str], profile: Profile, default_locale: str) -> _Source:
    by_locale: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if n.rendered.get(kind):
            by_locale = n.rendered[kind]
            break
    locale = pick_locale(by_locale.keys(), profile.locale, default_locale)
    prepared = by_locale[locale] if locale else {}
    return _Source(n.created_at, n.data, prepared, n.actor, n.target)


@dataclass(frozen=True)
class _Composed:
    rendered: dict[str, dict[str, dict[str, Any]]]
    data: dict[str, Any]
    error: str | None


def _render(
    digest: Digest,
    entry: CatalogEntry | None,
    channel: Channel | None,
    profile: Profile,
    sources: Mapping[str, _Source],
    collected: Sequence[tuple[datetime, str]],
    default_locale: str,
) -> _Composed:
    """The digest's content for each template key of its channel, and the data it carries."""
    person = vars(profile)
    deadline = time.monotonic() + EVENT_RENDER_SECONDS
    events = []
    for _, nid in collected:
        s = sources[nid]
        fields = event_fields(s.prepared, s.data, person, deadline=deadline)
        events.append(DigestEvent(nid, s.created_at, s.data, fields, s.actor, s.target))
    name = str(entry.type.get("name") or digest.type_key) if entry else digest.type_key
    context = digest_context(events, person, DigestWindow(digest.type_key, name, digest.opened_at, digest.flush_at))
    templates = entry.templates if entry else {}
    rendered: dict[str, dict[str, dict[str, Any]]] = {}
    errors: list[str] = []
    for kind in _kinds(channel, digest.channel):
        by_locale = templates.get(kind, {})
        if kind != digest.channel and not by_locale:
            continue  # a provider of a logical channel with no template: not routed to
        locale = pick_locale(by_locale.keys(), profile.locale, default_locale)
        result = render_digest(by_locale[locale] if locale else {}, context, locale or profile.locale or default_locale)
        rendered[kind] = {locale or default_locale: result.fields}
        errors += [e for e in result.errors if e not in errors]
    if errors:
        log.warning("digest %s: the type's digest template was not (all) used: %s", digest.id, "; ".join(errors))
    data = {
        "count": context["count"],
        "events": [
            {k: v[k] for k in ("notification_id", "created_at", "title", "data", "truncated")}
            for v in context["events"]
        ],
    }
    return _Composed(rendered, data, "; ".join(errors)[:MAX_ERROR_CHARS] or None)


# -- the trace ------------------------------------------------------------------------------------


async def digest_summary(conn: AsyncConnection, notification: Mapping[str, Any]) -> dict[str, Any] | None:
    """``digest`` in ``GET /v1/notifications/{id}``: the digest a digest's notification sends."""
    if not notification.get("digest_id"):
        return None
    found = await digest_store.digest_of_notification(conn, str(notification["id"]))
    if found is None:
        return None
    digest, events = found
    return {
        "id": digest.id,
        "user_id": digest.user_id,
        "channel": digest.channel,
        "status": digest.status,
        "count": digest.count,
        "max_items": digest.max_items,
        "opened_at": digest.opened_at.isoformat(),
        "flush_at": digest.flush_at.isoformat(),
        "flushed_at": digest.flushed_at.isoformat() if digest.flushed_at else None,
        "events": events,
        "error": digest.last_error,
    }
