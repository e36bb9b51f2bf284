"""``/console/announcements``: notices, banners and activities. List them (active, scheduled, ended),
compose with a preview of how the widget shows it, schedule (a start in the future), edit, withdraw.

The form is checked with the API's own body model (``AnnouncementIn``) and saved through the same
engine functions as ``/v1/announcements`` (engine/announcements.py), so the serving processes' cache
of live announcements is told of each change exactly as through the API. Each change is audited in
its own transaction, after the engine's: the engine commits the change and tells the cache itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from herald.api.params import audience_of
from herald.api.schemas import AnnouncementIn
from herald.core.console import Role
from herald.core.cursor import BadCursor, decode_cursor, encode_cursor
from herald.core.enums import AnnouncementKind, ContentType
from herald.core.errors import Invalid, NotFound
from herald.engine import announcements as announcement_engine
from herald.store import announcements as ann_store
from herald.store.console import audit
from herald.store.types import utcnow
from herald.web.console.auth import Console, ConsoleDenied, Operator, Viewer
from herald.web.console.form_errors import FieldErrors, errors_of, utc_moment
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/announcements"
PAGE_SIZE = 50
KINDS = tuple(k.value for k in AnnouncementKind)
CONTENT_TYPES = tuple(c.value for c in ContentType)
TEXT_FIELDS = ("title", "summary", "body", "media_url", "action_url")
EMPTY = {
    "title": "",
    "summary": "",
    "body": "",
    "kind": AnnouncementKind.NOTICE.value,
    "content_type": ContentType.TEXT.value,
    "media_url": "",
    "action_url": "",
    "audience": "all",
    "tags": "",
    "starts_at": "",
    "ends_at": "",
}


FIELD_KEYS = frozenset(f"ann.field.{name}" for name in (*TEXT_FIELDS, "content_type", "tags", "starts_at", "ends_at"))


def can_edit(console: Console) -> bool:
    return console.session is not None and console.account.role.allows(Role.OPERATOR)


def state_of(row: dict[str, Any], now: datetime) -> str:
    """``scheduled`` before its start, ``ended`` from its end on, ``active`` between."""
    if row["starts_at"] is not None and row["starts_at"] > now:
        return "scheduled"
    if row["ends_at"] is not None and row["ends_at"] <= now:
        return "ended"
    return "active"


def _local(value: datetime | None) -> str:
    """A stored time as a ``datetime-local`` input's value (the console speaks UTC)."""
    return value.strftime("%Y-%m-%dT%H:%M") if value is not None else ""


def typed_of(row: dict[str, Any]) -> dict[str, str]:
    """A saved announcement as the form shows it."""
    audience = row["audience"] or {"all": True}
    return {
        **{f: row[f] or "" for f in TEXT_FIELDS},
        "kind": row["kind"],
        "content_type": row["content_type"],
        "audience": "tags" if audience.get("tags") else "all",
        "tags": ", ".join(audience.get("tags") or []),
        "starts_at": _local(row["starts_at"]),
        "ends_at": _local(row["ends_at"]),
    }


def typed_from(console: Console) -> dict[str, str]:
    """What was typed, kept as typed (to show again with its mistakes)."""
    form = console.form
    return {name: form.get(name, default)[:200_000] for name, default in EMPTY.items()}


def body_of(typed: dict[str, str]) -> dict[str, Any]:
    """The form as the API's body: empty optional fields absent, tags split at commas and lines."""
    body: dict[str, Any] = {"title": typed["title"], "kind": typed["kind"], "content_type": typed["content_type"]}
    for name in ("summary", "body", "media_url", "action_url"):
        if typed[name].strip():
            body[name] = typed[name]
    if typed["audience"] == "tags":
        tags = [t.strip() for t in typed["tags"].replace("\n", ",").split(",") if t.strip()]
        body["audience"] = {"tags": tags}
    else:
        body["audience"] = {"all": True}
    for name in ("starts_at", "ends_at"):
        moment = utc_moment(typed[name])
        if moment is not None:
            body[name] = moment
    return body


def parse(typed: dict[str, str]) -> tuple[announcement_engine.NewAnnouncement | None, FieldErrors]:
    """The announcement the form describes, or its mistakes by field (as the API would name them)."""
    body = body_of(typed)
    try:
        checked = AnnouncementIn.model_validate(body)
        announcement_engine.check_window(checked.starts_at, checked.ends_at)
        new = announcement_engine.NewAnnouncement(
            **checked.model_dump(exclude={"audience"}), audience=audience_of(checked.audience)
        )
    except (ValidationError, Invalid) as exc:
        errors = errors_of(exc)
        if "audience" in errors and typed["audience"] == "tags":
            errors["tags"] = errors.pop("audience")
        return None, errors
    return new, {}


def changes_of(new: announcement_engine.NewAnnouncement) -> dict[str, Any]:
    """Every field the form edits (the data the API may have set is left as it is)."""
    return {
        "title": new.title,
        "summary": new.summary,
        "body": new.body,
        "kind": new.kind,
        "content_type": new.content_type,
        "media_url": new.media_url,
        "action_url": new.action_url,
        "audience": dict(new.audience) if new.audience is not None else {"all": True},
        "starts_at": new.starts_at,
        "ends_at": new.ends_at,
    }


def preview_of(new: announcement_engine.NewAnnouncement) -> dict[str, Any]:
    """What the widget shows of it: the words as text, its kind, where it leads."""
    return {
        "title": new.title,
        "summary": new.summary,
        "body": new.body,
        "kind": new.kind.value,
        "content_type": new.content_type.value,
        "media_url": new.media_url,
        "action_url": new.action_url,
    }


def details_of(row: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of an announcement (its words are the announcement's, not secrets)."""
    return {
        "title": row["title"][:200],
        "kind": row["kind"],
        "audience": row["audience"],
        "starts_at": row["starts_at"].isoformat() if row["starts_at"] else None,
        "ends_at": row["ends_at"].isoformat() if row["ends_at"] else None,
    }


async def _announcement(console: Console, announcement_id: str) -> dict[str, Any]:
    async with console.herald.db.read() as conn:
        row = await ann_store.get_announcement(conn, announcement_id[:100])
    if row is None:
        raise ConsoleDenied(404, "error.not_found")
    return row


def _form_page(
    console: Console,
    *,
    typed: dict[str, str],
    row: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return render(
        console,
        "announcement.html",
        status=status,
        title="ann.edit" if row is not None else "ann.new",
        nav="announcements",
        typed=typed,
        row=row,
        state=state_of(row, utcnow()) if row is not None else None,
        errors=errors or {},
        preview=preview,
        kinds=KINDS,
        content_types=CONTENT_TYPES,
        field_names=FIELD_KEYS,
        can_edit=can_edit(console),
    )


@router.get(BASE)
async def announcements_page(console: Viewer) -> Response:
    params = console.request.query_params
    kind = params.get("kind", "")
    kind = kind if kind in KINDS else ""
    try:
        before = decode_cursor(params["cursor"][:400]) if params.get("cursor") else None
    except BadCursor:  # a cursor this page did not make: the first page
        before = None
    async with console.herald.db.read() as conn:
        rows = await ann_store.list_announcements(conn, before=before, limit=PAGE_SIZE + 1, kind=kind or None)
    page = rows[:PAGE_SIZE]
    now = utcnow()
    next_cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > PAGE_SIZE else None
    return render(
        console,
        "announcements.html",
        title="ann.title",
        nav="announcements",
        rows=[{**r, "state": state_of(r, now)} for r in page],
        kinds=KINDS,
        kind=kind,
        next_cursor=next_cursor,
        can_edit=can_edit(console),
    )


@router.get(BASE + "/new")
async def new_page(console: Operator) -> Response:
    return _form_page(console, typed=dict(EMPTY))


@router.post(BASE)
async def create(console: Operator) -> Response:
    typed = typed_from(console)
    new, errors = parse(typed)
    if new is None:
        return _form_page(console, typed=typed, errors=errors, status=422)
    if console.form.get("action") == "preview":
        return _form_page(console, typed=typed, preview=preview_of(new))
    saved = await announcement_engine.create_announcement(console.herald.db, console.herald.announcements, new)
    async with console.herald.db.write() as conn:
        await audit(conn, console.account, "announcement.create", saved["id"], details_of(saved))
    return redirect(f"{BASE}/{saved['id']}", notice="notice.ann_created")


@router.get(BASE + "/{announcement_id}")
async def announcement_page(announcement_id: str, console: Viewer) -> Response:
    row = await _announcement(console, announcement_id)
    typed = typed_of(row)
    new, _ = parse(typed)
    return _form_page(console, typed=typed, row=row, preview=preview_of(new) if new is not None else None)


@router.post(BASE + "/{announcement_id}")
async def edit(announcement_id: str, console: Operator) -> Response:
    row = await _announcement(console, announcement_id)
    typed = typed_from(console)
    new, errors = parse(typed)
    if new is None:
        return _form_page(console, typed=typed, row=row, errors=errors, status=422)
    if console.form.get("action") == "preview":
        return _form_page(console, typed=typed, row=row, preview=preview_of(new))
    try:
        saved = await announcement_engine.update_announcement(
            console.herald.db, console.herald.announcements, row["id"], changes_of(new)
        )
    except NotFound:
        raise ConsoleDenied(404, "error.not_found") from None
    async with console.herald.db.write() as conn:
        await audit(conn, console.account, "announcement.update", saved["id"], details_of(saved))
    return redirect(f"{BASE}/{saved['id']}", notice="notice.ann_saved")


@router.post(BASE + "/{announcement_id}/delete")
async def withdraw(announcement_id: str, console: Operator) -> Response:
    row = await _announcement(console, announcement_id)
    try:
        await announcement_engine.delete_announcement(console.herald.db, console.herald.announcements, row["id"])
    except NotFound:
        raise ConsoleDenied(404, "error.not_found") from None
    async with console.herald.db.write() as conn:
        await audit(conn, console.account, "announcement.delete", row["id"], details_of(row))
    return redirect(BASE, notice="notice.ann_deleted")
