"""Saving and deleting event webhooks (where Herald reports message.sent / delivered / failed / read):
what ``PUT``/``DELETE /v1/event-webhooks/{name}`` and the console's page both do.

The secret is write-only: reads show ``MASK``; the mask sent back keeps the stored secret, and the
URL shown redacted (a token in it is a secret too), sent back unchanged, keeps the stored URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from herald.core.errors import Invalid, NotFound
from herald.core.urls import MASK, redact_url
from herald.engine.events import EVENT_TYPES
from herald.engine.service import Herald
from herald.store import event_webhooks as store

MAX_URL = 2048
MAX_SECRET = 500


def check_event_webhook(url: str, secret: str, events: Sequence[str]) -> list[str]:
    """The events, sorted and without repeats; ``Invalid`` naming ``url``, ``secret`` or ``events``
    (the same limits the API's body model states)."""
    errors: list[tuple[str, str]] = []
    if not (8 <= len(url) <= MAX_URL) or not url.lower().startswith(("http://", "https://")):
        errors.append(("url", f"an http:// or https:// URL of at most {MAX_URL} characters"))
    if not 1 <= len(secret) <= MAX_SECRET:
        errors.append(("secret", f"1 to {MAX_SECRET} characters"))
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if not events:
        errors.append(("events", "choose at least one event"))
    elif unknown:
        errors.append(("events", f"unknown events {unknown}; choose from {list(EVENT_TYPES)}"))
    if errors:
        raise Invalid(errors)
    return sorted(set(events))


async def save_event_webhook(herald: Herald, name: str, url: str, secret: str, events: list[str]) -> dict[str, Any]:
    """Create or replace the webhook ``name`` (the mask or the redacted URL keep the stored ones)."""
    async with herald.db.write() as conn:
        existing = await store.get_event_webhook(conn, herald.box, name) if MASK in (secret + url) else None
        if secret == MASK:  # a form sending the mask back keeps the stored secret
            if existing is None or existing["secret"] is None:
                raise Invalid([("secret", "send the secret itself, not the mask")])
            secret = existing["secret"]
        if MASK in url:  # ... and the URL shown masked, sent back unchanged, keeps the stored one
            if existing is None or url != redact_url(existing["url"]):
                raise Invalid([("url", "send the whole URL: the masked one is kept only when sent back unchanged")])
            url = existing["url"]
        hook = await store.put_event_webhook(conn, herald.box, name, url, secret, events)
    herald.events.invalidate()
    return hook


async def delete_event_webhook(herald: Herald, name: str) -> None:
    """``NotFound`` when there is no such webhook."""
    async with herald.db.write() as conn:
        if not await store.delete_event_webhook(conn, name):
            raise NotFound("event webhook")
    herald.events.invalidate()
