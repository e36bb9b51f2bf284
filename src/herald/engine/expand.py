"""Expanding a notification into its recipients' inbox items and delivery rows (one chunk)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.actions import localized_actions
from herald.core.enums import Priority
from herald.core.ids import new_ids
from herald.core.links import safe_links
from herald.core.locales import pick_locale
from herald.core.templates import has_recipient_fields, render_for_recipient
from herald.engine import metrics
from herald.engine.preferences import skipped_inapp_rows
from herald.store import deliveries as delivery_store
from herald.store import inbox as inbox_store
from herald.store import users as user_store
from herald.store.notifications import InboxWrite

INAPP = "inapp"
MERGE = "$merge"
"""In ``rendered``: the notification's items merge (engine/merge.py, which imports this module)."""
log = logging.getLogger(__name__)


def delivery_expiry(notification: dict[str, Any], ttl_seconds: int | None) -> datetime | None:
    if notification.get("expires_at"):
        return notification["expires_at"]  # type: ignore[no-any-return]
    if ttl_seconds:
        start = notification.get("send_at") or notification["created_at"]
        return start + timedelta(seconds=ttl_seconds)  # type: ignore[no-any-return]
    return None


async def expand_chunk(
    conn: AsyncConnection,
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    *,
    now: datetime,
    default_locale: str,
    expires_at: datetime | None,
    inapp_off: Collection[str] = (),
) -> int:
    """Write the inbox items and delivery rows of ``recipients`` (dicts with ``id`` and ``locale``);
    those in ``inapp_off`` turned the inbox off for the type: no item, a skipped ``inapp`` delivery."""
    rendered: dict[str, dict[str, dict[str, Any]]] = notification["rendered"]
    if not recipients:
        return 0
    inbox = [r for r in recipients if r["id"] not in inapp_off] if inapp_off else recipients
    if INAPP in notification["channels"] and MERGE in rendered:
        from herald.engine import merge  # imported here: it builds on this module

        await merge.write_items(
            conn, notification, inbox, now=now, default_locale=default_locale, expires_at=expires_at
        )
    elif INAPP in notification["channels"] and inbox:
        await _write_inbox_items(conn, notification, inbox, rendered.get(INAPP, {}), now, default_locale, expires_at)
    rows = delivery_rows(notification, recipients, now=now, expires_at=expires_at)
    if inapp_off:
        skipped = [r["id"] for r in recipients if r["id"] in inapp_off]
        rows += skipped_inapp_rows(notification, skipped, now=now, expires_at=expires_at)
    if rows:
        await delivery_store.insert_deliveries(conn, rows)
        metrics.count_written(rows)
    return len(recipients)


def delivery_rows(
    notification: dict[str, Any], recipients: Sequence[dict[str, Any]], *, now: datetime, expires_at: datetime | None
) -> list[dict[str, Any]]:
    """The delivery rows (one per recipient and channel other than in-app) of ``recipients``."""
    other = [c for c in notification["channels"] if c != INAPP]
    if not other or not recipients:
        return []
    rank = Priority(notification["priority"]).rank
    ids = new_ids("dlv", len(recipients) * len(other))
    rows = []
    i = 0
    for user in recipients:
        for channel in other:
            rows.append(
                {
                    "id": ids[i],
                    "notification_id": notification["id"],
                    "user_id": user["id"],
                    "channel": channel,
                    "account": None,
                    "status": "pending",
                    "reason": None,
                    "reason_detail": None,  # every row has every column: an executemany takes the first row's
                    "priority": rank,
                    "attempts": 0,
                    "last_error": None,
                    "provider_message_id": None,
                    "next_attempt_at": now,
                    "lease_until": None,
                    "lease_owner": None,
                    "expires_at": expires_at,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            i += 1
    return rows


async def collect_inbox_items(
    out: InboxWrite,
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    ids: Sequence[str],
    *,
    now: datetime,
    default_locale: str,
    expires_at: datetime | None,
    profiles: Mapping[str, Mapping[str, Any]],
) -> None:
    """Add the in-app items of ``recipients`` (dicts with ``id`` and ``locale``) to ``out``, with
    these item ``ids``: what ``expand_chunk`` writes, gathered so that many notifications' items
    go to the database in one statement (a trigger, a batch of triggers). ``profiles``: the
    recipients' rows, needed only when the template uses ``recipient``."""
    templates: dict[str, dict[str, Any]] = notification["rendered"].get(INAPP, {})
    if any(has_recipient_fields(content) for content in templates.values()):
        variants, variant_of = await asyncio.to_thread(
            _personal_variants, notification, recipients, profiles, templates, default_locale
        )
    else:
        variants, variant_of = _shared_variants(notification, recipients, templates, default_locale)
    position, first_variant = len(out.shared), len(out.variants)
    out.shared.append(_shared_columns(notification, now, expires_at))
    out.variants.extend(variants)
    out.ids.extend(ids)
    out.user_ids.extend(u["id"] for u in recipients)
    out.notification_of.extend([position] * len(recipients))
    out.variant_of.extend(first_variant + v for v in variant_of)


def needs_profiles(notification: dict[str, Any]) -> bool:
    """Whether the in-app content of ``notification`` is rendered per recipient (``${recipient.…}``)."""
    templates: dict[str, dict[str, Any]] = notification["rendered"].get(INAPP, {})
    return INAPP in notification["channels"] and any(has_recipient_fields(c) for c in templates.values())


def _shared_columns(notification: dict[str, Any], now: datetime, expires_at: datetime | None) -> dict[str, Any]:
    return {
        "notification_id": notification["id"],
        "type_key": notification["type_key"],
        "category": notification["category"],
        "data": notification["data"],
        "actor": notification["actor"],
        "target": notification["target"],
        "created_at": now,
        "expires_at": expires_at,
    }


def _inbox_variant(
    notification: dict[str, Any], content: Mapping[str, Any], locale: str | None, default_locale: str
) -> dict[str, Any]:
    """One item's content; ``locale``: its recipient's, for labels given per locale (core/actions.py)."""
    content = safe_links(content)  # a link rendered per recipient that runs script is dropped
    return {
        "title": content.get("title") or notification["type_key"],
        "summary": content.get("summary"),
        "body": content.get("body"),
        "action_url": content.get("action_url"),
        "actions": localized_actions(content.get("actions") or [], locale, default_locale),
    }


def _shared_variants(
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    templates: dict[str, dict[str, Any]],
    default_locale: str,
) -> tuple[list[dict[str, Any]], list[int]]:
    """Rendered content chosen once per distinct user locale, not per row."""
    variants: list[dict[str, Any]] = []
    variant_for_locale: dict[str | None, int] = {}
    variant_of: list[int] = []
    for user in recipients:
        locale = user.get("locale")
        index = variant_for_locale.get(locale)
        if index is None:
            chosen = pick_locale(templates.keys(), locale, default_locale)
            index = variant_for_locale[locale] = len(variants)
            variants.append(_inbox_variant(notification, templates[chosen] if chosen else {}, locale, default_locale))
        variant_of.append(index)
    return variants, variant_of


def _personal_variants(
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    profiles: Mapping[str, Mapping[str, Any]],
    templates: dict[str, dict[str, Any]],
    default_locale: str,
) -> tuple[list[dict[str, Any]], list[int]]:
    """One variant per recipient: the template uses ``${recipient.…}``."""
    variants: list[dict[str, Any]] = []
    failed = 0
    for user in recipients:
        profile = profiles.get(user["id"]) or {"id": user["id"], "locale": user.get("locale")}
        chosen = pick_locale(templates.keys(), profile.get("locale"), default_locale)
        content, errors = render_for_recipient(templates[chosen] if chosen else {}, notification["data"], profile)
        failed += bool(errors)
        variants.append(_inbox_variant(notification, content, profile.get("locale"), default_locale))
    if failed:
        log.warning("notification %s: %d in-app items rendered with empty fields", notification["id"], failed)
    return variants, list(range(len(variants)))


async def _write_inbox_items(
    conn: AsyncConnection,
    notification: dict[str, Any],
    recipients: Sequence[dict[str, Any]],
    templates: dict[str, dict[str, Any]],
    now: datetime,
    default_locale: str,
    expires_at: datetime | None,
) -> None:
    """The in-app items: shared content per locale, or per recipient when the template uses
    ``recipient`` (rendered in a worker thread, so a chunk's rendering never stalls the loop)."""
    if any(has_recipient_fields(content) for content in templates.values()):
        profiles = await user_store.get_users(conn, [u["id"] for u in recipients])
        variants, variant_of = await asyncio.to_thread(
            _personal_variants, notification, recipients, profiles, templates, default_locale
        )
    else:
        variants, variant_of = _shared_variants(notification, recipients, templates, default_locale)
    await inbox_store.insert_notification_items(
        conn,
        shared=_shared_columns(notification, now, expires_at),
        variants=variants,
        ids=new_ids("itm", len(recipients)),
        user_ids=[u["id"] for u in recipients],
        variant_of=variant_of,
    )
