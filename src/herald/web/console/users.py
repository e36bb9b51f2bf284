"""``/console/users``: recipients. Viewers look a user up by id and see the profile (addresses, tags,
data), their preferences, their unread inbox count and their recent deliveries; operators edit the
profile (checked by the same ``UserIn`` model as ``PUT /v1/users/{id}``) and delete the user with
everything stored for them (``store.users.erase_user``, as ``DELETE /v1/users/{id}``).

User ids are the business system's own strings (any text, slashes included): they travel in the
query string (``?id=``) and in hidden form fields, never in the path.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from herald.api.schemas import UserIn
from herald.core.console import Role
from herald.core.inputs import text_problem
from herald.store import inbox as inbox_store
from herald.store import users as user_store
from herald.store.console import audit
from herald.store.preferences import get_document
from herald.store.types import utcnow
from herald.store.user_activity import recent_deliveries
from herald.web.console.auth import Console, ConsoleDenied, Operator, Viewer
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/users"
MAX_ID = 200
SCALARS = ("name", "email", "phone", "locale", "timezone")
JSON_FIELDS = ("channels", "data")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) if value else ""


def _typed_of(user: dict[str, Any]) -> dict[str, str]:
    typed = {k: user[k] or "" for k in SCALARS}
    typed["tags"] = ", ".join(user["tags"] or [])
    typed.update({k: _json(user[k]) for k in JSON_FIELDS})
    return typed


async def _profile_page(
    console: Console,
    user: dict[str, Any],
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    field_errors: dict[str, list[str]] | None = None,
) -> Response:
    async with console.herald.db.read() as conn:
        preferences = await get_document(conn, user["id"])
        counts, _ = await inbox_store.unread_and_unseen(conn, user["id"], now=utcnow())
        rows = await recent_deliveries(conn, user["id"])
    return render(
        console,
        "user.html",
        status=status,
        title="users.title",
        nav="users",
        user=user,
        user_q=quote(user["id"], safe=""),
        channels_json=_json(user["channels"]),
        data_json=_json(user["data"]),
        preferences=_json(preferences[0]) if preferences else "",
        unread=sum(unread for unread, _ in counts.values()),
        deliveries=rows,
        typed=typed or _typed_of(user),
        field_errors=field_errors or {},
        can_edit=console.account.role.allows(Role.OPERATOR),
    )


async def _user(console: Console, user_id: str) -> dict[str, Any] | None:
    if not user_id or len(user_id) > MAX_ID or text_problem(user_id):
        return None
    async with console.herald.db.read() as conn:
        return await user_store.get_user(conn, user_id)


@router.get(BASE)
async def users_page(console: Viewer, id: str = "") -> Response:
    wanted = id.strip()
    user = await _user(console, wanted) if wanted else None
    if user is not None:
        return await _profile_page(console, user)
    return render(
        console,
        "users.html",
        status=404 if wanted else 200,
        title="users.title",
        nav="users",
        wanted=wanted[:MAX_ID],
    )


def _fields_of(form_get: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The profile the form describes, and the problems of fields that are not JSON."""
    fields: dict[str, Any] = {k: (form_get(k).strip() or None) for k in SCALARS}
    fields["tags"] = [t.strip() for t in form_get("tags").split(",") if t.strip()]
    errors: dict[str, list[str]] = {}
    for key in JSON_FIELDS:
        raw = form_get(key).strip()
        try:
            fields[key] = json.loads(raw) if raw else {}
        except ValueError:
            errors.setdefault(key, []).append("not valid JSON")
    return fields, errors


@router.post(BASE + "/edit")
async def edit_user(console: Operator) -> Response:
    user = await _user(console, console.form.get("id"))
    if user is None:
        raise ConsoleDenied(404, "error.not_found")
    fields, errors = _fields_of(console.form.get)
    typed = {k: console.form.get(k)[:20_000] for k in (*SCALARS, "tags", *JSON_FIELDS)}
    if not errors:
        try:
            checked = UserIn.model_validate(fields)
        except ValidationError as exc:
            for e in exc.errors():
                key = str(e["loc"][0]) if e["loc"] else "profile"
                errors.setdefault(key, []).append(e["msg"])
    if errors:
        return await _profile_page(console, user, status=422, typed=typed, field_errors=errors)
    values = checked.model_dump()
    changed = sorted(k for k in values if values[k] != user.get(k))
    async with console.herald.db.write() as conn:
        await user_store.upsert_user(conn, user["id"], values)
        await audit(conn, console.account, "user.update", user["id"], {"fields": changed})
    return redirect(f"{BASE}?id={quote(user['id'], safe='')}", notice="notice.user_saved")


@router.post(BASE + "/delete")
async def delete_user(console: Operator) -> Response:
    user = await _user(console, console.form.get("id"))
    if user is None:
        raise ConsoleDenied(404, "error.not_found")
    async with console.herald.db.write() as conn:
        if not await user_store.erase_user(conn, user["id"]):
            raise ConsoleDenied(404, "error.not_found")
        await audit(conn, console.account, "user.delete", user["id"], {})
    return redirect(BASE, notice="notice.user_deleted")
