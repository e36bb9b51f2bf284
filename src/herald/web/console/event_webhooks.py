"""``/console/event-webhooks``: event webhooks (admins only). List; create and edit (the secret
write-only: never shown, an empty secret field on edit keeps the stored one; the URL shown redacted,
kept when sent back unchanged); delete. Saving goes through ``engine.event_webhooks`` like the API.

The audit log records the name, the events, the URL redacted and whether the signing key changed, never the secret.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from herald.api.schemas import KEY_PATTERN
from herald.core.errors import Invalid, NotFound
from herald.core.urls import MASK, redact_url
from herald.engine import event_webhooks as engine
from herald.engine.events import EVENT_TYPES
from herald.store import event_webhooks as store
from herald.store.console import audit
from herald.web.console.auth import Admin, Console, ConsoleDenied
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/event-webhooks"
NAME = re.compile(KEY_PATTERN)


def _shown(hook: dict[str, Any]) -> dict[str, Any]:
    """A webhook as pages show it: the URL redacted, no secret."""
    return {
        "name": hook["name"],
        "url": redact_url(hook["url"]) if hook["url"] else "",
        "events": hook["events"],
        "error": hook["error"],
        "updated_at": hook["updated_at"],
    }


async def _load(console: Console, name: str) -> dict[str, Any]:
    async with console.herald.db.read() as conn:
        hook = await store.get_event_webhook(conn, console.herald.box, name[:200])
    if hook is None:
        raise ConsoleDenied(404, "error.not_found")
    return hook


@router.get(BASE)
async def list_page(console: Admin) -> Response:
    async with console.herald.db.read() as conn:
        hooks = await store.list_event_webhooks(conn, console.herald.box)
    return render(
        console, "event_webhooks.html", title="hooks.title", nav="event_webhooks", hooks=[_shown(h) for h in hooks]
    )


def _form_page(
    console: Console,
    hook: dict[str, Any] | None,
    *,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    errors: list[tuple[str, str]] | None = None,
) -> Response:
    if typed is None:
        shown = _shown(hook) if hook else None
        typed = {"name": hook["name"] if hook else "", "url": shown["url"] if shown else "", "events": []}
        typed["events"] = shown["events"] if shown else list(EVENT_TYPES)
    field_errors: dict[str, list[str]] = {}
    for field, message in errors or []:
        field_errors.setdefault(field, []).append(message)
    return render(
        console,
        "event_webhook.html",
        status=status,
        title="hooks.title",
        nav="event_webhooks",
        subject=hook,
        typed=typed,
        event_types=EVENT_TYPES,
        field_errors=field_errors,
    )


@router.get(BASE + "/new")
async def new_page(console: Admin) -> Response:
    return _form_page(console, None)


@router.get(BASE + "/{name}")
async def edit_page(name: str, console: Admin) -> Response:
    return _form_page(console, await _load(console, name))


@router.post(BASE)
async def save(console: Admin) -> Response:
    form = console.form
    original = form.get("original")
    existing = await _load(console, original) if original else None
    name = original or form.get("name").strip()
    url = form.get("url").strip()
    secret = form.get("secret")
    events = form.getall("events")
    typed = {"name": name[:200], "url": url[:2048], "events": [e for e in events if e in EVENT_TYPES]}
    errors: list[tuple[str, str]] = []
    if not NAME.match(name):
        errors.append(("name", "letters, digits and . _ : - (at most 200), starting with a letter or digit"))
    elif existing is None:
        async with console.herald.db.read() as conn:
            if await store.get_event_webhook(conn, console.herald.box, name) is not None:
                errors.append(("name", "a webhook with this name exists already"))
    if MASK in secret:
        errors.append(("secret", "type the secret itself"))
    elif not secret and existing is not None:
        secret = MASK  # left empty on edit: the engine keeps the stored secret
    try:
        checked = engine.check_event_webhook(url, secret, events)
    except Invalid as exc:
        errors += exc.errors
    if errors:
        return _form_page(console, existing, status=422, typed=typed, errors=errors)
    try:
        await engine.save_event_webhook(console.herald, name, url, secret, checked)
    except Invalid as exc:
        return _form_page(console, existing, status=422, typed=typed, errors=exc.errors)
    async with console.herald.db.write() as conn:
        shown_url = redact_url(url) if MASK not in url else url
        details = {"url": shown_url, "events": checked, "signing_key_changed": secret != MASK}
        action = "event_webhook.update" if existing else "event_webhook.create"
        await audit(conn, console.account, action, name, details)
    return redirect(f"{BASE}/{name}", notice="notice.hook_saved")


@router.post(BASE + "/{name}/delete")
async def delete(name: str, console: Admin) -> Response:
    hook = await _load(console, name)
    try:
        await engine.delete_event_webhook(console.herald, hook["name"])
    except NotFound as exc:
        raise ConsoleDenied(404, "error.not_found") from exc
    async with console.herald.db.write() as conn:
        await audit(conn, console.account, "event_webhook.delete", hook["name"], {"events": hook["events"]})
    return redirect(BASE, notice="notice.hook_deleted")
