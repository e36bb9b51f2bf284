"""Notification types and their templates (API key), and template previews."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import ValidationError

from herald.api.auth import AdminKey, HeraldDep, ReadKey
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import (
    NotificationTypeDetail,
    NotificationTypeOut,
    NotificationTypePage,
    PreviewOut,
    TemplateOut,
    documented,
)
from herald.api.params import ChannelName, Cursor, Limit, TypeKey
from herald.api.schemas import Locale, NotificationTypeIn, PreviewIn, TemplateIn, nul_path
from herald.api.views import type_view
from herald.core.cursor import decode_key_cursor, encode_key_cursor
from herald.core.digests import template_digest_problems
from herald.core.errors import Invalid, NotFound, TemplateError
from herald.core.links import template_link_problems
from herald.core.locales import pick_locale
from herald.core.merge import key_problem as merge_key_problem
from herald.core.rules import TypeRules, rule_problems
from herald.core.templates import (
    COMMON_FIELDS,
    SAMPLE_RECIPIENT,
    TemplateLimitError,
    check_limits,
    render_for_recipient,
    validate_fields,
    without_digest_fields,
)
from herald.engine.accounts import check_account_choice
from herald.engine.service import Herald
from herald.engine.trigger import missing_templates, render_all
from herald.store import catalog

router = APIRouter(prefix="/v1", tags=["types"], dependencies=[Depends(refuse_nul_in_url)])


def _check_channels(herald: Herald, channels: list[str], field: str = "channels") -> None:
    unknown = [(f"{field}.{i}", f"unknown channel '{c}'") for i, c in enumerate(channels) if c not in herald.channels]
    if unknown:
        raise Invalid(unknown)


@router.put("/notification-types/{key}", **documented(NotificationTypeOut, also=(201,)))
async def put_type(
    key: TypeKey, body: NotificationTypeIn, herald: HeraldDep, _: AdminKey, response: Response
) -> dict[str, Any]:
    _check_channels(herald, body.channels)
    fields = body.model_dump(mode="json")
    fields["name"] = fields["name"] or key
    fields["channels"] = list(dict.fromkeys(body.channels))
    if problems := rule_problems(fields["channels"], TypeRules.of(fields)):
        raise Invalid(problems)
    if body.merge is not None and (problem := await asyncio.to_thread(merge_key_problem, body.merge.key)):
        raise Invalid([("merge.key", problem)])
    async with herald.db.write() as conn:
        if body.accounts is not None:
            fields["accounts"] = await check_account_choice(
                conn, herald.box, herald.channels, body.accounts, fields["channels"]
            )
        existing = await catalog.get_type(conn, key)
        templates = await catalog.get_templates(conn, key) if existing is not None else {}
        if existing is not None and templates:  # a live type: a new channel must have its template first
            added = set(fields["channels"]) - set(existing["channels"])
            if errors := missing_templates(herald, key, fields["channels"], templates, only=added):
                raise Invalid([(f, f"{m}: save the template first, then add the channel") for f, m in errors])
        row, created = await catalog.put_type(conn, key, fields)
    herald.cache_changed("catalog")  # committed: the next trigger here reads it anew, elsewhere once told
    if created:
        response.status_code = 201
    return type_view(row)


@router.get("/notification-types", **documented(NotificationTypePage))
async def list_types(herald: HeraldDep, _: ReadKey, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    after = decode_key_cursor(cursor) if cursor else None
    async with herald.db.read() as conn:
        rows = await catalog.list_types(conn, after=after, limit=limit + 1)
    page = rows[:limit]
    return {
        "items": [type_view(r) for r in page],
        "next_cursor": encode_key_cursor(page[-1]["key"]) if len(rows) > limit else None,
    }


@router.get("/notification-types/{key}", **documented(NotificationTypeDetail))
async def get_type(key: TypeKey, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        row = await catalog.get_type(conn, key)
        if row is None:
            raise NotFound("notification type")
        templates = await catalog.get_templates(conn, key)
    return type_view(row) | {"templates": templates}


@router.delete("/notification-types/{key}", status_code=204, **documented(None, 204))
async def delete_type(key: TypeKey, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await catalog.delete_type(conn, key):
            raise NotFound("notification type")
    herald.cache_changed("catalog")
    return Response(status_code=204)


@router.put("/notification-types/{key}/templates/{channel}", **documented(TemplateOut))
async def put_template(
    key: TypeKey,
    channel: ChannelName,
    body: TemplateIn,
    herald: HeraldDep,
    _: AdminKey,
    locale: Annotated[Locale | None, Query()] = None,
) -> dict[str, Any]:
    if channel not in herald.channels:
        raise Invalid([("channel", f"unknown channel '{channel}'")])
    fields = body.model_dump(exclude_none=True)
    if not fields:
        raise Invalid([("body", "a template needs at least one field (title, body, ...)")])
    if (where := nul_path(fields)) is not None:
        raise Invalid([(where, "contains a NUL character")])
    try:
        validate_fields(fields)
    except TemplateError as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc
    if channel == "inapp" and (bad_links := template_link_problems(fields)):
        raise Invalid(bad_links)
    kind = herald.channels[channel]
    generic = kind.requires_template or bool(kind.routes_over)
    if digest_problems := template_digest_problems(channel, fields, model=kind.Template, generic=generic):
        raise Invalid(digest_problems)
    own = without_digest_fields(fields)  # the digest's fields (digest_title, …) are checked above
    template_model = kind.Template
    if template_model is not None:  # the channel's own fields: SMS template code, robot msgtype, ...
        try:
            template_model.model_validate(own)
        except ValidationError as exc:
            raise Invalid([(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()]) from exc
    # the generic fields; a channel that needs no template of its own (webhook) sends the content as is
    elif (kind.requires_template or kind.routes_over) and (unknown := [f for f in own if f not in COMMON_FIELDS]):
        known = ", ".join(COMMON_FIELDS)
        raise Invalid([(f, f"unknown template field '{f}' for channel '{channel}' (known: {known})") for f in unknown])
    try:  # a template over a limit whatever the data (nested loops, 'a'.center(10**9)) is refused now
        await asyncio.to_thread(check_limits, fields)
    except TemplateLimitError as exc:
        raise Invalid([(exc.field or "body", f"{exc.message} (limit: {exc.limit})")]) from exc
    except TemplateError as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc
    async with herald.db.write() as conn:
        if await catalog.get_type(conn, key) is None:
            raise NotFound("notification type")
        saved = await catalog.put_template(conn, key, channel, locale or herald.settings.default_locale, fields)
    herald.cache_changed("catalog")
    return saved | {"updated_at": saved["updated_at"].isoformat()}


@router.delete("/notification-types/{key}/templates/{channel}", status_code=204, **documented(None, 204))
async def delete_template(
    key: TypeKey,
    channel: ChannelName,
    herald: HeraldDep,
    _: AdminKey,
    locale: Annotated[Locale | None, Query()] = None,
) -> Response:
    async with herald.db.write() as conn:
        if not await catalog.delete_template(conn, key, channel, locale or herald.settings.default_locale):
            raise NotFound("template")
    herald.cache_changed("catalog")
    return Response(status_code=204)


@router.post("/templates/preview", **documented(PreviewOut))
async def preview(body: PreviewIn, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        if await catalog.get_type(conn, body.type) is None:
            raise Invalid([("type", f"unknown notification type '{body.type}'")])
        templates = (await catalog.get_templates(conn, body.type)).get(body.channel, {})
    locale = pick_locale(templates.keys(), body.locale, herald.settings.default_locale)
    if locale is None:
        raise Invalid([("channel", f"type '{body.type}' has no template for channel '{body.channel}'")])
    rendered = await asyncio.to_thread(_preview_fields, body.channel, locale, templates[locale], body.data)
    return {"type": body.type, "channel": body.channel, "locale": locale, "fields": rendered}


def _preview_fields(channel: str, locale: str, fields: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """As a trigger renders them (every missing variable named at once), ``recipient`` being
    ``SAMPLE_RECIPIENT`` unless the data has its own."""
    prepared = render_all({channel: {locale: fields}}, [channel], data)[channel][locale]
    rendered, _ = render_for_recipient(prepared, data, SAMPLE_RECIPIENT)
    return rendered
