"""Announcements (API key): public notices, banners and activities, one row each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.auth import AdminKey, HeraldDep, ReadKey
from herald.api.idempotency import Store, idempotent
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import AnnouncementOut, AnnouncementPage, documented
from herald.api.params import Cursor, Limit, audience_of
from herald.api.schemas import AnnouncementIn, AnnouncementPatch
from herald.api.views import announcement_view
from herald.core.cursor import decode_cursor, encode_cursor
from herald.core.enums import AnnouncementKind
from herald.core.errors import NotFound
from herald.engine import announcements as announcement_engine
from herald.store import announcements as ann_store

router = APIRouter(prefix="/v1", tags=["announcements"], dependencies=[Depends(refuse_nul_in_url)])


@router.post("/announcements", status_code=201, **documented(AnnouncementOut, 201, idempotent=True))
async def create_announcement(body: AnnouncementIn, herald: HeraldDep, key: AdminKey, request: Request) -> Response:
    # refused before the Idempotency-Key is claimed
    announcement_engine.check_window(body.starts_at, body.ends_at)
    new = announcement_engine.NewAnnouncement(
        **body.model_dump(exclude={"audience"}), audience=audience_of(body.audience)
    )

    async def handler(store: Store | None) -> tuple[int, Any]:
        async def on_created(conn: AsyncConnection, saved: dict[str, Any]) -> None:
            if store is not None:
                await store(conn, 201, announcement_view(saved))

        saved = await announcement_engine.create_announcement(
            herald.db, herald.announcements, new, on_created=on_created
        )
        return 201, announcement_view(saved)

    return await idempotent(request, herald, key.id, handler)


@router.get("/announcements", **documented(AnnouncementPage))
async def list_announcements(
    herald: HeraldDep, _: ReadKey, limit: Limit = 20, cursor: Cursor = None, kind: AnnouncementKind | None = None
) -> dict[str, Any]:
    before = decode_cursor(cursor) if cursor else None
    async with herald.db.read() as conn:
        rows = await ann_store.list_announcements(
            conn, before=before, limit=limit + 1, kind=kind.value if kind else None
        )
    page = rows[:limit]
    return {
        "items": [announcement_view(r) for r in page],
        "next_cursor": encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None,
    }


@router.get("/announcements/{announcement_id}", **documented(AnnouncementOut))
async def get_announcement(announcement_id: str, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        row = await ann_store.get_announcement(conn, announcement_id)
    if row is None:
        raise NotFound("announcement")
    return announcement_view(row)


@router.patch("/announcements/{announcement_id}", **documented(AnnouncementOut))
async def patch_announcement(
    announcement_id: str, body: AnnouncementPatch, herald: HeraldDep, _: AdminKey
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, mode="python")
    if "audience" in changes:
        changes["audience"] = audience_of(body.audience)
    row = await announcement_engine.update_announcement(herald.db, herald.announcements, announcement_id, changes)
    return announcement_view(row)


@router.delete("/announcements/{announcement_id}", status_code=204, **documented(None, 204))
async def delete_announcement(announcement_id: str, herald: HeraldDep, _: AdminKey) -> Response:
    await announcement_engine.delete_announcement(herald.db, herald.announcements, announcement_id)
    return Response(status_code=204)
