"""Answering an inbox item's action (user token): ``POST /v1/me/inbox/{item_id}/actions/{action_id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from herald.api.auth import CurrentUser, HeraldDep
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import ActionAnswerOut, documented
from herald.api.schemas import ActionAnswerIn
from herald.api.views import inbox_item_view
from herald.engine import actions

router = APIRouter(prefix="/v1/me", tags=["me"], dependencies=[Depends(refuse_nul_in_url)])
ItemId = Annotated[str, Path(min_length=1, max_length=40)]
ActionId = Annotated[str, Path(min_length=1, max_length=64)]
ANSWER_DOC = documented(ActionAnswerOut, 201)
ANSWER_DOC["responses"].update(
    {
        404: {
            "description": "No such item of this user's (deleted, expired, an announcement), or no such action on it"
        },
        409: {"description": "The item was answered already (one answer per item, whatever the action)"},
        422: {"description": "`reason` missing for an action that requires one, too long, or not text"},
    }
)


@router.post("/inbox/{item_id}/actions/{action_id}", status_code=201, **ANSWER_DOC)
async def answer_action(
    item_id: ItemId, action_id: ActionId, user_id: CurrentUser, herald: HeraldDep, body: ActionAnswerIn | None = None
) -> dict[str, Any]:
    """Answer the item's action ``action_id`` (``confirm``, ``decline``, …), with a ``reason`` when it
    requires one. One answer per item: a second one is 409. The item is marked read."""
    answered = await actions.answer_item(herald, user_id, item_id, action_id, body.reason if body else None)
    return actions.answer_json(answered, inbox_item_view(answered.item))
