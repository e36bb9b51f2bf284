"""``/console/templates``: a type's template per channel x locale. The form is generated from the
channel's template schema (the one ``GET /v1/channels`` shows as ``template_schema``; the generic
fields for a channel without one), and a live preview renders what is typed with sample data through
the engine function ``POST /v1/templates/preview`` uses (``engine.catalog_admin.render_preview``),
after the checks a save makes; the renderer's errors are shown beside their fields.

The preview is ``POST …/preview`` with a JSON body ``{"form": [[name, value], …]}`` (the form's own
pairs, read as the save reads them) and the session's CSRF token in ``X-CSRF-Token``; the page's
script (``console-templates.js``) shows the answer as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from herald.api.schemas import KEY_PATTERN
from herald.core.console import Role
from herald.core.errors import Invalid, NotFound
from herald.core.inputs import text_problem
from herald.core.templates import COMMON_FIELDS
from herald.engine import catalog_admin
from herald.engine.service import Herald
from herald.store import catalog
from herald.store.console import audit
from herald.web.console.auth import Console, ConsoleDenied, Form, Operator, Viewer
from herald.web.console.render import redirect, render, secured

router = APIRouter(include_in_schema=False)
BASE = "/console/templates"
LONG = frozenset({"body", "text", "html", "content", "summary", "description"})
EXTRA = "_extra"  # the form field for any other template field, as a JSON object
DATA = "_data"  # the preview's sample data, a JSON object
MAX_PREVIEW_PAIRS = 200
PAGE = 50


@dataclass(frozen=True)
class FieldSpec:
    """One input of a template form: ``kind`` is text, long (a textarea), bool, choice or json."""

    name: str
    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""


def _kind(prop: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    types = {prop.get("type")} | {o.get("type") for o in prop.get("anyOf", [])}
    if "enum" in prop:
        return "choice", tuple(str(v) for v in prop["enum"])
    if types <= {"string", "null", None} and "string" in types:
        return "text", ()
    if "boolean" in types:
        return "bool", ()
    return "json", ()


def form_fields(herald: Herald, channel: str) -> list[FieldSpec]:
    """The inputs for ``channel``'s template, from its schema (the generic fields without one)."""
    model = herald.channels[channel].Template
    if model is None:
        return [FieldSpec(n, "json" if n == "actions" else "long" if n in LONG else "text") for n in COMMON_FIELDS]
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    specs = []
    for name, prop in schema.get("properties", {}).items():
        kind, choices = _kind(prop)
        if kind == "text" and name in LONG:
            kind = "long"
        specs.append(FieldSpec(name, kind, name in required, choices, str(prop.get("description", ""))))
    return specs


def fields_of(specs: list[FieldSpec], form: Form) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The template's fields from the form, and the inputs that are not what they must be."""
    fields: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for spec in specs:
        value = form.get(spec.name)
        if spec.kind == "bool":
            if value == "on":
                fields[spec.name] = True
        elif spec.kind == "json":
            if value.strip():
                try:
                    fields[spec.name] = json.loads(value)
                except ValueError as exc:
                    problems.append((spec.name, f"not valid JSON: {exc}"))
        elif value != "":
            fields[spec.name] = value
    extra = _json_object(form.get(EXTRA), EXTRA, problems)
    fields.update({k: v for k, v in extra.items() if k not in fields})
    return fields, problems


def _json_object(text: str, name: str, problems: list[tuple[str, str]]) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        problems.append((name, f"not valid JSON: {exc}"))
        return {}
    if not isinstance(value, dict):
        problems.append((name, "must be a JSON object"))
        return {}
    return value


def typed_of(specs: list[FieldSpec], fields: dict[str, Any]) -> dict[str, str]:
    """A stored template as its form shows it."""
    typed: dict[str, str] = {}
    for spec in specs:
        value = fields.get(spec.name)
        if value is None:
            typed[spec.name] = ""
        elif spec.kind == "bool":
            typed[spec.name] = "on" if value else ""
        elif spec.kind == "json" or not isinstance(value, str):
            typed[spec.name] = json.dumps(value, ensure_ascii=False, indent=1)
        else:
            typed[spec.name] = value
    known = {s.name for s in specs}
    extra = {k: v for k, v in fields.items() if k not in known}
    typed[EXTRA] = json.dumps(extra, ensure_ascii=False, indent=1) if extra else ""
    return typed


def _check_address(console: Console, key: str, channel: str, locale: str) -> None:
    import re

    if (
        not re.fullmatch(KEY_PATTERN, key)
        or channel not in console.herald.channels
        or not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", locale)
        or len(locale) > 35
    ):
        raise ConsoleDenied(404, "error.not_found")


async def _type_and_template(
    console: Console, key: str, channel: str, locale: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    _check_address(console, key, channel, locale)
    async with console.herald.db.read() as conn:
        row = await catalog.get_type(conn, key)
        if row is None:
            raise ConsoleDenied(404, "error.not_found")
        stored = (await catalog.get_templates(conn, key)).get(channel, {}).get(locale)
    return row, stored


def _page(
    console: Console,
    row: dict[str, Any],
    channel: str,
    locale: str,
    typed: dict[str, str],
    *,
    stored: bool,
    status: int = 200,
    problems: list[tuple[str, str]] | None = None,
) -> Response:
    by_field: dict[str, list[str]] = {}
    for name, message in problems or []:
        by_field.setdefault(name.split(".", 1)[0], []).append(f"{name}: {message}")
    return render(
        console,
        "template.html",
        status=status,
        title="templates.title",
        nav="templates",
        type=row,
        channel=channel,
        template_locale=locale,
        specs=form_fields(console.herald, channel),
        typed=typed,
        stored=stored,
        extra=EXTRA,
        data_field=DATA,
        errors=[f"{n}: {m}" for n, m in problems or []],
        field_errors=by_field,
        can_edit=console.account.role.allows(Role.OPERATOR),
        address=_address(row["key"], channel, locale),
    )


def _address(key: str, channel: str, locale: str) -> str:
    return f"{BASE}/{quote(key, safe='')}/{quote(channel, safe='')}/{quote(locale, safe='')}"


@router.get(BASE)
async def templates_page(console: Viewer) -> Response:
    after = console.request.query_params.get("after", "")[:200] or None
    async with console.herald.db.read() as conn:
        rows = await catalog.list_types(conn, after=after, limit=PAGE + 1)
        locales = await catalog.template_locales(conn, [row["key"] for row in rows[:PAGE]])
    listed = [(row, locales.get(row["key"], {})) for row in rows[:PAGE]]
    next_after = rows[PAGE - 1]["key"] if len(rows) > PAGE else None
    return render(
        console, "templates.html", title="templates.title", nav="templates", listed=listed, next_after=next_after
    )


@router.get(BASE + "/{key}/{channel}/{locale}")
async def template_page(key: str, channel: str, locale: str, console: Viewer) -> Response:
    row, stored = await _type_and_template(console, key, channel, locale)
    typed = typed_of(form_fields(console.herald, channel), stored or {})
    typed[DATA] = "{}"
    return _page(console, row, channel, locale, typed, stored=stored is not None)


@router.post(BASE + "/{key}/{channel}/{locale}")
async def save_template(key: str, channel: str, locale: str, console: Operator) -> Response:
    row, stored = await _type_and_template(console, key, channel, locale)
    specs = form_fields(console.herald, channel)
    fields, problems = fields_of(specs, console.form)
    typed = {s.name: console.form.get(s.name) for s in specs} | {
        EXTRA: console.form.get(EXTRA),
        DATA: console.form.get(DATA) or "{}",
    }
    if not problems:

        async def audited(conn: Any) -> None:
            details = {"channel": channel, "locale": locale, "fields": sorted(fields)}
            await audit(conn, console.account, "template.save", row["key"], details)

        try:
            await catalog_admin.save_template(console.herald, row["key"], channel, locale, fields, also=audited)
        except Invalid as exc:
            problems = list(exc.errors)
        except NotFound as exc:
            raise ConsoleDenied(404, "error.not_found") from exc
    if problems:
        return _page(console, row, channel, locale, typed, stored=stored is not None, status=422, problems=problems)
    return redirect(_address(row["key"], channel, locale), notice="notice.template_saved")


@router.post(BASE + "/{key}/{channel}/{locale}/delete")
async def delete_template(key: str, channel: str, locale: str, console: Operator) -> Response:
    row, _ = await _type_and_template(console, key, channel, locale)

    async def audited(conn: Any) -> None:
        await audit(conn, console.account, "template.delete", row["key"], {"channel": channel, "locale": locale})

    if not await catalog_admin.delete_template(console.herald, row["key"], channel, locale, also=audited):
        raise ConsoleDenied(404, "error.not_found")
    return redirect(f"/console/types/{quote(row['key'], safe='')}", notice="notice.template_deleted")


def _preview_form(body: Any) -> Form:
    """The JSON body's ``form`` pairs as a Form; Invalid when they are not pairs of plain text."""
    pairs = body.get("form") if isinstance(body, dict) else None
    if not isinstance(pairs, list) or len(pairs) > MAX_PREVIEW_PAIRS:
        raise Invalid([("form", "must be a list of [name, value] pairs")])
    out = []
    for pair in pairs:
        ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        if not ok or text_problem(pair[0]) or text_problem(pair[1]):
            raise Invalid([("form", "must be a list of [name, value] pairs of text")])
        out.append((pair[0], pair[1]))
    return Form(tuple(out))


@router.post(BASE + "/{key}/{channel}/{locale}/preview")
async def preview_template(key: str, channel: str, locale: str, console: Viewer) -> Response:
    """The typed template rendered with the typed sample data: ``{"fields": {…}}`` or ``{"errors":
    [{field, message}]}`` (422); nothing is stored."""
    row, _ = await _type_and_template(console, key, channel, locale)
    try:
        body = json.loads(await console.request.body() or b"null")
    except ValueError:
        body = None
    try:
        form = _preview_form(body)
        specs = form_fields(console.herald, channel)
        fields, problems = fields_of(specs, form)
        data = _json_object(form.get(DATA), DATA, problems)
        if problems:
            raise Invalid(problems)
        await catalog_admin.check_template(console.herald, channel, fields)
        rendered = await catalog_admin.render_preview(channel, locale, fields, data)
    except Invalid as exc:
        errors = [{"field": _data_field(f, channel), "message": m} for f, m in exc.errors]
        return secured(JSONResponse({"errors": errors}, status_code=422))
    return secured(JSONResponse({"type": row["key"], "channel": channel, "locale": locale, "fields": rendered}))


def _data_field(name: str, channel: str) -> str:
    """A missing variable is named ``data.x`` by the renderer: it belongs to the sample data input."""
    return DATA if name == "data" or name.startswith("data.") else name.removeprefix("templates.")
