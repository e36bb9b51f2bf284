"""``/console/types``: notification types. The list with a search by key or name; a type's page with
every field and rule ``PUT /v1/notification-types/{key}`` takes (category, priority, critical,
channels, names per locale, ttl, description, accounts, quiet hours, dedup, caps, throttle, merge,
digest); delete with confirmation. Viewers read; operators change; each change is audited.

The form is read into the API's own body model (``NotificationTypeIn``) and saved by the engine
function the API calls (``engine.catalog_admin.save_type``), so a mistake is named by the same field
and words as the API's 422, shown beside that field with what was typed kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from herald.api.schemas import KEY_PATTERN, NotificationTypeIn
from herald.core.console import Role
from herald.core.enums import Category, Priority
from herald.core.errors import Invalid
from herald.core.rules import QuietHoursMode
from herald.engine import catalog_admin
from herald.store import catalog
from herald.store.console import audit
from herald.web.console.auth import Console, ConsoleDenied, Form, Operator, Viewer
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/types"
PAGE = 50
CAP_PERIODS = ("hour", "day", "week")
CAP_ROWS = 3  # empty cap rows offered below the type's own


@dataclass
class FieldErrors:
    """The form's mistakes: all of them (the list on top) and by the form field they belong to."""

    all: list[str] = field(default_factory=list)
    by_field: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, name: str, message: str) -> None:
        self.all.append(f"{name}: {message}")
        self.by_field[name.split(".", 1)[0]].append(f"{name}: {message}")

    def __bool__(self) -> bool:
        return bool(self.all)


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` as the API's 422 names them (api/problems.py)."""
    out = []
    for err in exc.errors():
        parts = [str(p) for p in err.get("loc", ())]
        parts = [p for p in parts if not (p in ("str", "dict", "list", "int") or "[" in p)]
        out.append((".".join(parts) or "body", str(err.get("msg", "invalid"))))
    return out


def _number(text: str) -> int | str | None:
    """An integer field: empty is None; what is not a number is passed on for the model to name."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _pairs(text: str, field_name: str, errors: FieldErrors) -> dict[str, str]:
    """``name: value`` lines (names per locale, accounts per channel)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            errors.add(field_name, f"'{line[:60]}' is not 'name: value'")
            continue
        out[name.strip()] = value.strip()
    return out


def _caps(form: Form) -> list[dict[str, Any]]:
    caps = []
    rows = zip(form.getall("cap_channel"), form.getall("cap_per"), form.getall("cap_max"), strict=False)
    for channel, per, most in rows:
        if not most.strip():
            continue  # an empty row
        caps.append({"channel": channel or None, "per": per, "max": _number(most)})
    return caps


def _default(value: int | str | None, default: int) -> int | str:
    return default if value is None else value


def _optional_group(values: dict[str, Any]) -> dict[str, Any] | None:
    """A rule given as several inputs (throttle, merge, digest): absent when all are empty."""
    return values if any(v not in (None, "", []) for v in values.values()) else None


def body_of(form: Form, errors: FieldErrors) -> dict[str, Any]:
    """The form as the JSON body ``PUT /v1/notification-types/{key}`` would take."""
    names = _pairs(form.get("names"), "names", errors)
    accounts = {
        channel: [a.strip() for a in value.split(",") if a.strip()]
        for channel, value in _pairs(form.get("accounts"), "accounts", errors).items()
    }
    return {
        "name": form.get("name").strip() or None,
        "names": names or None,
        "category": form.get("category"),
        "priority": form.get("priority"),
        "channels": form.getall("channels"),
        "critical": form.get("critical") == "on",
        "ttl_seconds": _number(form.get("ttl_seconds")),
        "description": form.get("description") or None,
        "accounts": accounts or None,
        "quiet_hours": form.get("quiet_hours") or QuietHoursMode.DEFER.value,
        "dedup_seconds": _number(form.get("dedup_seconds")),
        "caps": _caps(form),
        "throttle": _optional_group(
            {"max": _number(form.get("throttle_max")), "window_seconds": _number(form.get("throttle_window"))}
        ),
        "merge": _optional_group(
            {"key": form.get("merge_key").strip(), "window_seconds": _number(form.get("merge_window"))}
        ),
        "digest": _optional_group(
            {
                "channels": form.getall("digest_channels"),
                "window_seconds": _number(form.get("digest_window")),
                "max_items": _default(_number(form.get("digest_max_items")), 50),
            }
            if form.getall("digest_channels") or form.get("digest_window").strip()
            else {}
        ),
    }


def typed_of(form: Form) -> dict[str, Any]:
    """What was typed, to show again after a mistake."""
    return {
        "key": form.get("key")[:200],
        "name": form.get("name"),
        "names": form.get("names"),
        "category": form.get("category"),
        "priority": form.get("priority"),
        "channels": form.getall("channels"),
        "critical": form.get("critical") == "on",
        "ttl_seconds": form.get("ttl_seconds"),
        "description": form.get("description"),
        "accounts": form.get("accounts"),
        "quiet_hours": form.get("quiet_hours"),
        "dedup_seconds": form.get("dedup_seconds"),
        "caps": [
            {"channel": c, "per": p, "max": m}
            for c, p, m in zip(form.getall("cap_channel"), form.getall("cap_per"), form.getall("cap_max"), strict=False)
            if m.strip()
        ],
        "throttle_max": form.get("throttle_max"),
        "throttle_window": form.get("throttle_window"),
        "merge_key": form.get("merge_key"),
        "merge_window": form.get("merge_window"),
        "digest_channels": form.getall("digest_channels"),
        "digest_window": form.get("digest_window"),
        "digest_max_items": form.get("digest_max_items"),
    }


def typed_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored type as the form shows it."""
    throttle, merge, digest = row.get("throttle") or {}, row.get("merge") or {}, row.get("digest") or {}
    return {
        "key": row["key"],
        "name": row["name"],
        "names": "\n".join(f"{k}: {v}" for k, v in (row.get("names") or {}).items()),
        "category": row["category"],
        "priority": row["priority"],
        "channels": row["channels"],
        "critical": row["critical"],
        "ttl_seconds": _text(row.get("ttl_seconds")),
        "description": row.get("description") or "",
        "accounts": "\n".join(f"{k}: {', '.join(v)}" for k, v in (row.get("accounts") or {}).items()),
        "quiet_hours": row.get("quiet_hours") or QuietHoursMode.DEFER.value,
        "dedup_seconds": _text(row.get("dedup_seconds")),
        "caps": [
            {"channel": c.get("channel") or "", "per": c["per"], "max": str(c["max"])} for c in row.get("caps") or []
        ],
        "throttle_max": _text(throttle.get("max")),
        "throttle_window": _text(throttle.get("window_seconds")),
        "merge_key": merge.get("key", ""),
        "merge_window": _text(merge.get("window_seconds")),
        "digest_channels": digest.get("channels", []),
        "digest_window": _text(digest.get("window_seconds")),
        "digest_max_items": _text(digest.get("max_items")),
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


NEW_TYPE = {
    "key": "",
    "name": "",
    "names": "",
    "category": Category.REMINDER.value,
    "priority": Priority.NORMAL.value,
    "channels": ["inapp"],
    "critical": False,
    "ttl_seconds": "",
    "description": "",
    "accounts": "",
    "quiet_hours": QuietHoursMode.DEFER.value,
    "dedup_seconds": "",
    "caps": [],
    "throttle_max": "",
    "throttle_window": "",
    "merge_key": "",
    "merge_window": "",
    "digest_channels": [],
    "digest_window": "",
    "digest_max_items": "",
}


def _form_page(
    console: Console,
    typed: dict[str, Any],
    *,
    existing: dict[str, Any] | None,
    templates: dict[str, dict[str, Any]] | None = None,
    status: int = 200,
    errors: FieldErrors | None = None,
) -> Response:
    return render(
        console,
        "type.html",
        status=status,
        title="types.title",
        nav="types",
        typed=typed,
        existing=existing,
        templates=templates or {},
        channels=list(console.herald.channels),
        categories=[c.value for c in Category],
        priorities=[p.value for p in Priority],
        quiet_modes=[m.value for m in QuietHoursMode],
        periods=CAP_PERIODS,
        cap_rows=CAP_ROWS,
        key_pattern=KEY_PATTERN.strip("^$"),
        errors=(errors or FieldErrors()).all,
        field_errors=(errors or FieldErrors()).by_field,
        can_edit=console.account.role.allows(Role.OPERATOR),
    )


@router.get(BASE)
async def types_page(console: Viewer) -> Response:
    query = console.request.query_params.get("q", "")[:200]
    after = console.request.query_params.get("after", "")[:200] or None
    async with console.herald.db.read() as conn:
        if query:
            rows = await catalog.search_types(conn, query, after=after, limit=PAGE + 1)
        else:
            rows = await catalog.list_types(conn, after=after, limit=PAGE + 1)
    return render(
        console,
        "types.html",
        title="types.title",
        nav="types",
        rows=rows[:PAGE],
        query=query,
        next_after=rows[PAGE - 1]["key"] if len(rows) > PAGE else None,
        can_edit=console.account.role.allows(Role.OPERATOR),
    )


@router.get(BASE + "/new")
async def new_type_page(console: Operator) -> Response:
    return _form_page(console, dict(NEW_TYPE), existing=None)


async def _existing(console: Console, key: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    async with console.herald.db.read() as conn:
        row = await catalog.get_type(conn, key[:200])
        if row is None:
            raise ConsoleDenied(404, "error.not_found")
        return row, await catalog.get_templates(conn, key)


@router.get(BASE + "/{key}")
async def type_page(key: str, console: Viewer) -> Response:
    row, templates = await _existing(console, key)
    return _form_page(console, typed_from_row(row), existing=row, templates=templates)


@router.post(BASE)
async def create_type(console: Operator) -> Response:
    key = console.form.get("key").strip()
    if not re.fullmatch(KEY_PATTERN, key):
        errors = FieldErrors()
        errors.add("key", console.t("types.err.key"))
        return _form_page(console, typed_of(console.form), existing=None, status=422, errors=errors)
    async with console.herald.db.read() as conn:
        taken = await catalog.get_type(conn, key) is not None
    if taken:
        errors = FieldErrors()
        errors.add("key", console.t("types.err.taken"))
        return _form_page(console, typed_of(console.form), existing=None, status=409, errors=errors)
    return await _save(console, key, existing=None)


@router.post(BASE + "/{key}")
async def update_type(key: str, console: Operator) -> Response:
    row, templates = await _existing(console, key)
    return await _save(console, row["key"], existing=row, templates=templates)


async def _save(
    console: Console,
    key: str,
    *,
    existing: dict[str, Any] | None,
    templates: dict[str, dict[str, Any]] | None = None,
) -> Response:
    errors = FieldErrors()
    body = body_of(console.form, errors)
    saved: tuple[dict[str, Any], bool] | None = None
    if not errors:
        try:
            model = NotificationTypeIn.model_validate(body)
            fields = model.model_dump(mode="json")

            async def audited(conn: Any) -> None:
                action = "type.update" if existing is not None else "type.create"
                await audit(
                    conn,
                    console.account,
                    action,
                    key,
                    {"name": fields.get("name") or key, "channels": fields["channels"]},
                )

            saved = await catalog_admin.save_type(console.herald, key, fields, model.accounts, also=audited)
        except ValidationError as exc:
            for name, message in validation_problems(exc):
                errors.add(name, message)
        except Invalid as exc:
            for name, message in exc.errors:
                errors.add(name, message)
    if saved is None:
        typed = typed_of(console.form) | ({"key": key} if existing is not None else {})
        return _form_page(console, typed, existing=existing, templates=templates, status=422, errors=errors)
    notice = "notice.type_saved" if existing is not None else "notice.type_created"
    return redirect(f"{BASE}/{quote_key(key)}", notice=notice)


def quote_key(key: str) -> str:
    return quote(key, safe="")


@router.post(BASE + "/{key}/delete")
async def delete_type(key: str, console: Operator) -> Response:
    row, _ = await _existing(console, key)

    async def audited(conn: Any) -> None:
        await audit(conn, console.account, "type.delete", row["key"], {"name": row["name"]})

    if not await catalog_admin.delete_type(console.herald, row["key"], also=audited):
        raise ConsoleDenied(404, "error.not_found")
    return redirect(BASE, notice="notice.type_deleted")
