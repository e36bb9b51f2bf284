"""Accepting a notification: validate, render, and write it with all its work in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.enums import NotificationStatus, Priority
from herald.core.errors import Invalid, TemplateError
from herald.core.ids import new_id
from herald.core.templates import RECIPIENT_FIELDS, MissingVariables, TemplateLimitError, prepare_fields
from herald.engine import metrics
from herald.engine.accounts import check_account_choice
from herald.engine.expand import INAPP, delivery_expiry, expand_chunk
from herald.engine.service import Herald
from herald.store import catalog, users
from herald.store import jobs as job_store
from herald.store import notifications as notification_store
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
    at once, and any template over a limit. CPU-bound: callers on the event loop use ``render_off_loop``."""
    rendered: dict[str, dict[str, dict[str, Any]]] = {}
    missing: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    for channel in channels:
        for locale, fields in templates.get(channel, {}).items():
            where = f"template {channel}/{locale}"
            try:
                rendered.setdefault(channel, {})[locale] = prepare_fields(fields, data)
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


async def render_off_loop(
    templates: dict[str, dict[str, dict[str, Any]]], channels: list[str], data: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``render_all`` in a worker thread: a slow template (bounded at a second) never stalls the loop."""
    return await asyncio.to_thread(render_all, templates, channels, data)


async def trigger(herald: Herald, req: TriggerRequest, *, on_commit: OnCommit | None = None) -> Accepted:
    now = utcnow()
    async with herald.db.read() as conn:
        ntype = await catalog.get_type(conn, req.type)
        if ntype is None:
            raise Invalid([("type", f"unknown notification type '{req.type}'")])
        templates = await catalog.get_templates(conn, req.type)
        requested = list(req.channels if req.channels is not None else ntype["channels"])
        accounts = (
            await check_account_choice(conn, herald.box, herald.channels, req.accounts, requested)
            if req.accounts is not None
            else None
        )

    channels = list(dict.fromkeys(requested))
    errors = missing_templates(herald, req.type, channels, templates)
    if not channels:
        errors.append(("channels", "the notification would go nowhere: no channels"))
    if errors:
        raise Invalid(errors)
    if req.send_at is not None and req.expires_at is not None and req.expires_at <= req.send_at:
        raise Invalid([("expires_at", "must be after send_at")])

    recipient_ids, profiles = _recipients(req)
    routed = [k for c in channels for k in herald.channels[c].routes_over]
    rendered = await render_off_loop(templates, list(dict.fromkeys(channels + routed)), req.data)

    scheduled = req.send_at is not None and req.send_at > now
    inline = req.audience is None and not scheduled and len(recipient_ids) <= herald.settings.inline_fanout_limit
    notification = {
        "id": new_id("ntf"),
        "type_key": req.type,
        "category": ntype["category"],
        "priority": Priority(ntype["priority"]).value,
        "status": (
            NotificationStatus.PROCESSED
            if inline
            else NotificationStatus.SCHEDULED
            if scheduled
            else NotificationStatus.EXPANDING
        ).value,
        "channels": channels,
        "data": req.data,
        "actor": req.actor,
        "target": req.target,
        "rendered": rendered,
        "audience": req.audience,
        "accounts": {**(ntype.get("accounts") or {}), **(accounts or {})} or None,
        "recipients": len(recipient_ids) if req.audience is None else None,
        "send_at": req.send_at,
        "expires_at": req.expires_at,
        "created_at": now,
        "updated_at": now,
    }
    accepted = Accepted(notification["id"], "accepted", len(recipient_ids) if req.audience is None else None)
    expires_at = delivery_expiry(notification, ntype["ttl_seconds"])

    async with herald.db.write() as conn:
        for uid, profile in profiles.items():
            await users.upsert_user(conn, uid, profile)
        await notification_store.insert_notification(conn, notification)
        if inline:
            await users.ensure_users(conn, recipient_ids)
            known = await users.get_users(conn, recipient_ids)
            recipients = [{"id": uid, "locale": known.get(uid, {}).get("locale")} for uid in recipient_ids]
            await expand_chunk(
                conn,
                notification,
                recipients,
                now=now,
                default_locale=herald.settings.default_locale,
                expires_at=expires_at,
            )
        else:
            payload = {
                "notification_id": notification["id"],
                "recipients": recipient_ids if req.audience is None else None,
                "audience": req.audience,
                "offset": 0,
                "after": None,
                "expanded": 0,
            }
            await job_store.enqueue_job(
                conn,
                "fanout",
                payload,
                run_at=req.send_at if scheduled else now,
                now=now,
                priority=Priority(ntype["priority"]).rank,
            )
        if on_commit is not None:
            await on_commit(conn, accepted)

    metrics.notifications_accepted.labels(req.type).inc()
    if inline and INAPP in channels:
        metrics.inbox_items_written.inc(len(recipient_ids))
    herald.wake_worker()
    return accepted
