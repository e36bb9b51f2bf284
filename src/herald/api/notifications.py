"""Notifications (API key): trigger, status with every delivery's trace, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.auth import HeraldDep, ReadKey, SendKey
from herald.api.idempotency import Store, idempotent
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import AcceptedOut, CancelledOut, NotificationOut, documented
from herald.api.params import audience_of
from herald.api.schemas import TriggerIn
from herald.api.views import delivery_view, inapp_delivery_view
from herald.core.errors import NotFound
from herald.engine import notifications as notification_engine
from herald.engine import trigger as trigger_engine
from herald.store import deliveries as delivery_store
from herald.store import inbox as inbox_store
from herald.store import notifications as notification_store

router = APIRouter(prefix="/v1", tags=["notifications"], dependencies=[Depends(refuse_nul_in_url)])
DELIVERY_LIST_CAP = 1000


@router.post("/notifications", status_code=202, **documented(AcceptedOut, 202, idempotent=True))
async def trigger(body: TriggerIn, herald: HeraldDep, key: SendKey, request: Request) -> Response:
    req = trigger_engine.TriggerRequest(
        type=body.type,
        to=[r if isinstance(r, str) else r.model_dump(exclude_unset=True) for r in body.to]
        if body.to is not None
        else None,
        audience=audience_of(body.audience),
        data=body.data,
        actor=body.actor,
        target=body.target,
        send_at=body.send_at,
        expires_at=body.expires_at,
        channels=body.channels,
        accounts=body.accounts,
    )

    async def handler(store: Store | None) -> tuple[int, Any]:
        async def on_commit(conn: AsyncConnection, accepted: trigger_engine.Accepted) -> None:
            if store is not None:
                await store(conn, 202, accepted.as_json())

        accepted = await trigger_engine.trigger(herald, req, on_commit=on_commit)
        return 202, accepted.as_json()

    return await idempotent(request, herald, key.id, handler)


@router.get("/notifications/{notification_id}", **documented(NotificationOut))
async def get_notification(notification_id: str, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        n = await notification_store.get_notification(conn, notification_id)
        if n is None:
            raise NotFound("notification")
        rows = await delivery_store.deliveries_of(conn, notification_id)
        attempts = await delivery_store.attempts_of(conn, [d["id"] for d in rows[:DELIVERY_LIST_CAP]])
        items = await inbox_store.items_of_notification(conn, notification_id, DELIVERY_LIST_CAP + 1)
        inapp_total = await inbox_store.count_items_of_notification(conn, notification_id) if items else 0
        counts = await delivery_store.status_counts(conn, notification_id)
    deliveries = [inapp_delivery_view(i) for i in items[:DELIVERY_LIST_CAP]] + [
        delivery_view(d, attempts.get(d["id"], [])) for d in rows[:DELIVERY_LIST_CAP]
    ]
    if items and "inapp" in n["channels"]:
        counts["delivered"] = counts.get("delivered", 0) + inapp_total
    return {
        "id": n["id"],
        "type": n["type_key"],
        "category": n["category"],
        "status": n["status"],
        "created_at": n["created_at"].isoformat(),
        "send_at": n["send_at"].isoformat() if n["send_at"] else None,
        "expires_at": n["expires_at"].isoformat() if n["expires_at"] else None,
        "recipients": n["recipients"],
        "channels": n["channels"],
        "delivery_counts": counts,
        "deliveries": deliveries,
        "deliveries_truncated": len(rows) > DELIVERY_LIST_CAP or len(items) > DELIVERY_LIST_CAP,
    }


@router.delete("/notifications/{notification_id}", **documented(CancelledOut))
async def cancel_notification(notification_id: str, herald: HeraldDep, _: SendKey) -> dict[str, Any]:
    cancelled = await notification_engine.cancel_notification(herald.db, notification_id)
    return cancelled.as_json()
