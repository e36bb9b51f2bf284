"""User-side endpoints (user token): the inbox, counts, marks, banners. Only ever the caller's own data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from herald.api.auth import CurrentUser, HeraldDep
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import BannerList, InboxCounts, InboxItemOut, InboxPage, ReadAllOut, documented
from herald.api.schemas import ReadAllIn, StatusFilter
from herald.api.views import inbox_item_view
from herald.core import rawjson
from herald.core.enums import Category
from herald.engine import inbox

router = APIRouter(prefix="/v1/me", tags=["me"], dependencies=[Depends(refuse_nul_in_url)])
ItemId = Annotated[str, Path(min_length=1, max_length=40)]


@router.get("/inbox", **documented(InboxPage))
async def list_inbox(
    user_id: CurrentUser,
    herald: HeraldDep,
    status: StatusFilter = "all",
    category: Category | None = None,
    archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    page = await inbox.feed(
        herald,
        user_id,
        status=status,
        category=category.value if category else None,
        archived=archived,
        cursor=cursor,
        limit=limit,
    )
    return inbox_page_response(page)


def inbox_page_response(page: inbox.Page) -> Response:
    """The views are JSON already and stored JSON columns pass through as they are (``core.rawjson``):
    no jsonable_encoder walk, no decode and re-encode (the hot path)."""
    items = [inbox_item_view(i) for i in page.items]
    return Response(rawjson.dumps({"items": items, "next_cursor": page.next_cursor}), media_type="application/json")


@router.get("/inbox/counts", **documented(InboxCounts))
async def inbox_counts(user_id: CurrentUser, herald: HeraldDep) -> JSONResponse:
    return JSONResponse(await inbox.counts(herald, user_id))


@router.post("/inbox/read-all", **documented(ReadAllOut))
async def read_all(user_id: CurrentUser, herald: HeraldDep, body: ReadAllIn | None = None) -> dict[str, Any]:
    category = body.category.value if body and body.category else None
    return {"updated": await inbox.read_all(herald, user_id, category)}


@router.post("/inbox/seen", **documented(ReadAllOut))
async def mark_seen(user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    """Everything up to now is seen (the bell was opened): `unseen` in the counts drops to 0."""
    return {"updated": await inbox.mark_seen(herald, user_id)}


@router.get("/inbox/{item_id}", **documented(InboxItemOut))
async def get_item(item_id: ItemId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return inbox_item_view(await inbox.get_item(herald, user_id, item_id))


async def _mark(herald: Any, user_id: str, item_id: str, action: str) -> dict[str, Any]:
    await inbox.mark(herald, user_id, item_id, action)
    return inbox_item_view(await inbox.get_item(herald, user_id, item_id))


@router.post("/inbox/{item_id}/read", **documented(InboxItemOut))
async def mark_read(item_id: ItemId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return await _mark(herald, user_id, item_id, "read")


@router.post("/inbox/{item_id}/unread", **documented(InboxItemOut))
async def mark_unread(item_id: ItemId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return await _mark(herald, user_id, item_id, "unread")


@router.post("/inbox/{item_id}/archive", **documented(InboxItemOut))
async def archive(item_id: ItemId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return await _mark(herald, user_id, item_id, "archive")


@router.post("/inbox/{item_id}/unarchive", **documented(InboxItemOut))
async def unarchive(item_id: ItemId, user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return await _mark(herald, user_id, item_id, "unarchive")


@router.delete("/inbox/{item_id}", status_code=204, **documented(None, 204))
async def delete_item(item_id: ItemId, user_id: CurrentUser, herald: HeraldDep) -> Response:
    await inbox.mark(herald, user_id, item_id, "delete")
    return Response(status_code=204)


@router.get("/banners", **documented(BannerList))
async def banners(user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return {"items": [inbox_item_view(i) for i in await inbox.banners(herald, user_id)]}
