"""Notification types and their templates (API key), and template previews."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

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
from herald.core.errors import Invalid, NotFound
from herald.engine import catalog_admin, previews
from herald.store import catalog

router = APIRouter(prefix="/v1", tags=["types"], dependencies=[Depends(refuse_nul_in_url)])


@router.put("/notification-types/{key}", **documented(NotificationTypeOut, also=(201,)))
async def put_type(
    key: TypeKey, body: NotificationTypeIn, herald: HeraldDep, _: AdminKey, response: Response
) -> dict[str, Any]:
    row, created = await catalog_admin.save_type(herald, key, body.model_dump(mode="json"), body.accounts)
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
    if not await catalog_admin.delete_type(herald, key):
        raise NotFound("notification type")
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
    fields = body.model_dump(exclude_none=True)
    if (where := nul_path(fields)) is not None:
        raise Invalid([(where, "contains a NUL character")])
    locale = locale or herald.settings.default_locale
    saved = await catalog_admin.save_template(herald, key, channel, locale, fields)
    return saved | {"updated_at": saved["updated_at"].isoformat()}


@router.delete("/notification-types/{key}/templates/{channel}", status_code=204, **documented(None, 204))
async def delete_template(
    key: TypeKey,
    channel: ChannelName,
    herald: HeraldDep,
    _: AdminKey,
    locale: Annotated[Locale | None, Query()] = None,
) -> Response:
    if not await catalog_admin.delete_template(herald, key, channel, locale or herald.settings.default_locale):
        raise NotFound("template")
    return Response(status_code=204)


@router.post("/templates/preview", **documented(PreviewOut))
async def preview(body: PreviewIn, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    preview = await previews.preview_template(herald, body.type, body.channel, body.locale, body.data)
    return preview.as_json()
