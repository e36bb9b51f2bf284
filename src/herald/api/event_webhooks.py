"""Event webhooks (admin): where Herald reports message.sent / delivered / failed / read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from herald.api.auth import AdminKey, HeraldDep
from herald.api.openapi import EventWebhookOut, EventWebhookPage, documented
from herald.api.schemas import KEY_PATTERN
from herald.core.errors import NotFound
from herald.core.urls import redact_url
from herald.engine import event_webhooks as event_webhook_engine
from herald.engine.accounts import MASK
from herald.engine.events import EVENT_TYPES
from herald.store import event_webhooks as store

router = APIRouter(prefix="/v1/event-webhooks", tags=["event webhooks"])
Name = Annotated[str, Path(pattern=KEY_PATTERN)]


class EventWebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://")]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    events: list[str] = Field(min_length=1)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown events {unknown}; choose from {list(EVENT_TYPES)}")
        return sorted(set(value))


def _view(hook: dict[str, Any]) -> dict[str, Any]:
    view = {
        "name": hook["name"],
        "url": redact_url(hook["url"]),  # a token in the query or the path is a secret too
        "secret": MASK,
        "events": hook["events"],
        "created_at": hook["created_at"].isoformat(),
        "updated_at": hook["updated_at"].isoformat(),
    }
    if hook["error"]:
        view["error"] = hook["error"]
    return view


@router.put("/{name}", **documented(EventWebhookOut))
async def put_event_webhook(name: Name, body: EventWebhookIn, herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    hook = await event_webhook_engine.save_event_webhook(herald, name, body.url, body.secret, body.events)
    return _view(hook)


@router.get("", **documented(EventWebhookPage))
async def list_event_webhooks(herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        hooks = await store.list_event_webhooks(conn, herald.box)
    return {"items": [_view(h) for h in hooks], "next_cursor": None}


@router.get("/{name}", **documented(EventWebhookOut))
async def get_event_webhook(name: Name, herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        hook = await store.get_event_webhook(conn, herald.box, name)
    if hook is None:
        raise NotFound("event webhook")
    return _view(hook)


@router.delete("/{name}", status_code=204, **documented(None, 204))
async def delete_event_webhook(name: Name, herald: HeraldDep, _: AdminKey) -> Response:
    await event_webhook_engine.delete_event_webhook(herald, name)
    return Response(status_code=204)
