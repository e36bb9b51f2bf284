"""Recurring schedules (API key): a cron expression in a timezone, and the trigger each occurrence sends."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.auth import HeraldDep, ReadKey, SendKey
from herald.api.idempotency import Store, idempotent
from herald.api.limits import refuse_nul_in_url
from herald.api.notifications import _request_of
from herald.api.openapi import _Out, documented
from herald.api.params import Cursor, Limit
from herald.api.schemas import ScheduleIn
from herald.core.cursor import decode_cursor, encode_cursor
from herald.core.errors import NotFound
from herald.engine import schedules as schedule_engine
from herald.store import schedules as schedule_store

router = APIRouter(prefix="/v1", tags=["schedules"], dependencies=[Depends(refuse_nul_in_url)])
ScheduleId = Annotated[str, Path(min_length=1, max_length=40)]


class ScheduleOut(_Out):
    id: str = Field(description="`sch_…`")
    name: str | None
    cron: str
    timezone: str
    trigger: dict[str, Any] = Field(description="The trigger body each occurrence sends")
    catch_up_seconds: int
    next_run_at: str = Field(description="The next occurrence, RFC 3339 in UTC")
    last_run_at: str | None = Field(description="The occurrence last sent")
    last_notification_id: str | None
    last_error: str | None = Field(description="Why the last occurrence due could not be sent, if it could not")
    runs: int = Field(description="Occurrences sent")
    missed: int = Field(description="Occurrences passed over unsent: after downtime, or because the trigger failed")
    created_at: str
    updated_at: str


class SchedulePage(_Out):
    items: list[ScheduleOut]
    next_cursor: str | None


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def schedule_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "cron": row["cron"],
        "timezone": row["timezone"],
        "trigger": row["trigger"],
        "catch_up_seconds": row["catch_up_seconds"],
        "next_run_at": _t(row["next_run_at"]),
        "last_run_at": _t(row["last_run_at"]),
        "last_notification_id": row["last_notification_id"],
        "last_error": row["last_error"],
        "runs": row["runs"],
        "missed": row["missed"],
        "created_at": _t(row["created_at"]),
        "updated_at": _t(row["updated_at"]),
    }


@router.post("/schedules", status_code=201, **documented(ScheduleOut, 201, idempotent=True))
async def create_schedule(body: ScheduleIn, herald: HeraldDep, key: SendKey, request: Request) -> Response:
    """The cron expression, the timezone and the trigger are all checked now (422 naming each
    field, the trigger's under `trigger.`); the first occurrence is the first after now."""
    new = schedule_engine.NewSchedule(
        cron=body.cron,
        timezone=body.timezone,
        trigger=_request_of(body.trigger),
        name=body.name,
        catch_up_seconds=body.catch_up_seconds,
    )

    async def handler(store: Store | None) -> tuple[int, Any]:
        async def on_created(conn: AsyncConnection, row: dict[str, Any]) -> None:
            if store is not None:
                await store(conn, 201, schedule_view(row))

        row = await schedule_engine.create_schedule(herald, new, on_created=on_created)
        return 201, schedule_view(row)

    return await idempotent(request, herald, key.id, handler)


@router.get("/schedules", **documented(SchedulePage))
async def list_schedules(herald: HeraldDep, _: ReadKey, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    before = decode_cursor(cursor) if cursor else None
    async with herald.db.read() as conn:
        rows = await schedule_store.list_schedules(conn, before=before, limit=limit + 1)
    page = rows[:limit]
    return {
        "items": [schedule_view(r) for r in page],
        "next_cursor": encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None,
    }


@router.get("/schedules/{schedule_id}", **documented(ScheduleOut))
async def get_schedule(schedule_id: ScheduleId, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        row = await schedule_store.get_schedule(conn, schedule_id)
    if row is None:
        raise NotFound("schedule")
    return schedule_view(row)


@router.delete("/schedules/{schedule_id}", status_code=204, **documented(None, 204))
async def delete_schedule(schedule_id: ScheduleId, herald: HeraldDep, _: SendKey) -> Response:
    """No occurrence is sent after this answers; notifications already sent are not touched (cancel
    them by id, or by a `cancellation_key` given in the trigger)."""
    await schedule_engine.delete_schedule(herald, schedule_id)
    return Response(status_code=204)
