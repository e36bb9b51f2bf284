"""``/console/send``: trigger a type to users (ids, comma or line separated) or an audience (everyone,
or tags) with data as JSON, optionally on some channels, later (``send_at``) or with a cancellation
key. A preview comes first: what each channel would send with that data, rendered by the same engine
function as ``POST /v1/templates/preview`` (engine/previews.py). Sending then goes through
engine/trigger.py exactly as ``POST /v1/notifications`` (the body checked with its model,
``TriggerIn``), the audit record written in the trigger's own transaction; the page then goes to the
notification's trace.

What is sent is what was previewed: the confirm button carries a digest of the previewed request,
and a form changed since its preview is previewed again instead of sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.notifications import _request_of
from herald.api.schemas import TriggerIn
from herald.core.errors import Invalid
from herald.engine import previews
from herald.engine import trigger as trigger_engine
from herald.store import catalog
from herald.store.console import audit
from herald.web.console.auth import Console, Operator
from herald.web.console.form_errors import FieldErrors, errors_of, utc_moment
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/send"
MODES = ("users", "all", "tags")
TYPE_LIST_CAP = 1000
MAX_FIELD_CHARS = 1_000_000
EMPTY = {
    "type": "",
    "mode": "users",
    "users": "",
    "tags": "",
    "data": "{}",
    "channels": "",
    "send_at": "",
    "cancellation_key": "",
}
# where the trigger's fields are on this form
FORM_FIELD = {"to": "users", "audience": "tags", "body": "data"}


@dataclass(frozen=True)
class ChannelPreview:
    channel: str
    locale: str | None
    fields: dict[str, Any]
    error: str | None


def typed_from(console: Console) -> dict[str, str]:
    form = console.form
    typed = {name: form.get(name, default)[:MAX_FIELD_CHARS] for name, default in EMPTY.items()}
    if typed["mode"] not in MODES:
        typed["mode"] = "users"
    return typed


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def body_of(typed: dict[str, str]) -> tuple[dict[str, Any], FieldErrors]:
    """The form as the body of ``POST /v1/notifications``, or the mistakes only the form can make."""
    errors: FieldErrors = {}
    body: dict[str, Any] = {"type": typed["type"].strip()}
    if typed["mode"] == "users":
        body["to"] = _split(typed["users"])
        if not body["to"]:
            errors["users"] = "name at least one user id"
    elif typed["mode"] == "tags":
        body["audience"] = {"tags": _split(typed["tags"])}
    else:
        body["audience"] = {"all": True}
    try:
        data = json.loads(typed["data"] or "{}")
    except ValueError as exc:
        errors["data"] = f"not valid JSON: {exc}"
    except RecursionError:
        errors["data"] = "nested too deeply"
    else:
        if isinstance(data, dict):
            body["data"] = data
        else:
            errors["data"] = "must be a JSON object"
    if channels := _split(typed["channels"]):
        body["channels"] = channels
    if (send_at := utc_moment(typed["send_at"])) is not None:
        body["send_at"] = send_at
    if typed["cancellation_key"].strip():
        body["cancellation_key"] = typed["cancellation_key"].strip()
    return body, errors


def on_form(errors: FieldErrors) -> FieldErrors:
    return {FORM_FIELD.get(field, field): message for field, message in errors.items()}


def digest_of(body: dict[str, Any]) -> str:
    """Names the request previewed: the confirm button sends it back."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def parse(typed: dict[str, str]) -> tuple[TriggerIn | None, dict[str, Any], FieldErrors]:
    body, errors = body_of(typed)
    if errors:
        return None, body, errors
    try:
        return TriggerIn.model_validate(body), body, {}
    except ValidationError as exc:
        return None, body, on_form(errors_of(exc))


async def channel_previews(console: Console, checked: TriggerIn) -> list[ChannelPreview]:
    """What each channel of the send would carry with this data (its template's default locale)."""
    async with console.herald.db.read() as conn:
        row = await catalog.get_type(conn, checked.type)
    if row is None:
        raise Invalid([("type", f"unknown notification type '{checked.type}'")])
    out = []
    for channel in checked.channels or row["channels"]:
        try:
            preview = await previews.preview_template(console.herald, checked.type, channel, None, checked.data)
        except Invalid as exc:
            message = "; ".join(f"{field}: {msg}" for field, msg in exc.errors)
            out.append(ChannelPreview(channel, None, {}, message))
        else:
            out.append(ChannelPreview(channel, preview.locale, preview.fields, None))
    return out


async def _type_keys(console: Console) -> list[str]:
    async with console.herald.db.read() as conn:
        return [r["key"] for r in await catalog.list_types(conn, after=None, limit=TYPE_LIST_CAP)]


async def _page(
    console: Console,
    typed: dict[str, str],
    *,
    errors: FieldErrors | None = None,
    shown: list[ChannelPreview] | None = None,
    previewed: str = "",
    status: int = 200,
) -> Response:
    return render(
        console,
        "send.html",
        status=status,
        title="send.title",
        nav="send",
        typed=typed,
        errors=errors or {},
        previews=shown,
        previewed=previewed,
        modes=MODES,
        type_keys=await _type_keys(console),
    )


@router.get(BASE)
async def send_page(console: Operator) -> Response:
    typed = dict(EMPTY)
    wanted = console.request.query_params.get("type", "")[:200]
    typed["type"] = wanted
    return await _page(console, typed)


@router.post(BASE)
async def send(console: Operator) -> Response:
    typed = typed_from(console)
    checked, body, errors = parse(typed)
    if checked is None:
        return await _page(console, typed, errors=errors, status=422)
    digest = digest_of(body)
    if console.form.get("action") != "send" or console.form.get("previewed") != digest:
        try:
            shown = await channel_previews(console, checked)
        except Invalid as exc:
            return await _page(console, typed, errors=on_form(errors_of(exc)), status=422)
        return await _page(console, typed, shown=shown, previewed=digest)

    async def audited(conn: AsyncConnection, accepted: trigger_engine.Accepted) -> None:
        details = {"type": checked.type, "recipients": accepted.recipients, "status": accepted.status}
        if checked.audience is not None:
            details["audience"] = body["audience"]
        await audit(conn, console.account, "notification.send", accepted.id, details)

    try:
        accepted = await trigger_engine.trigger(console.herald, _request_of(checked), on_commit=audited)
    except Invalid as exc:
        return await _page(console, typed, errors=on_form(errors_of(exc)), status=exc.status)
    return redirect(f"/console/trace?id={accepted.id}", notice="notice.sent")
