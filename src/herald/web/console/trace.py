"""``GET /console/trace?id=ntf_…``: one notification as a timeline — accepted, then each delivery with
its attempts (account, code, error), its reason and whether the in-app item was read.

The data is exactly what ``GET /v1/notifications/{id}`` answers: the console reads it with the same
engine function (engine/notifications.py ``notification_trace``) and shapes it with the same view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from herald.api.notifications import notification_view
from herald.core.errors import NotFound
from herald.core.inputs import text_problem
from herald.engine.notifications import notification_trace
from herald.web.console.auth import Viewer
from herald.web.console.render import render

router = APIRouter(include_in_schema=False)
MAX_ID_CHARS = 200


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def timeline(notification: dict[str, Any]) -> list[dict[str, Any]]:
    """The deliveries in the order things happened to them, each with its times parsed."""
    rows = []
    for d in notification["deliveries"]:
        attempts = [
            {**a, "started_at": _time(a["started_at"]), "finished_at": _time(a["finished_at"])}
            for a in d.get("attempt_log", [])
        ]
        rows.append(
            {
                **d,
                "updated_at": _time(d["updated_at"]),
                "next_attempt_at": _time(d.get("next_attempt_at")),
                "attempt_log": attempts,
            }
        )
    return sorted(rows, key=lambda d: (d["updated_at"] or datetime.min, d["id"]))


@router.get("/console/trace")
async def trace_page(console: Viewer) -> Response:
    wanted = console.request.query_params.get("id", "").strip()
    notification = None
    missing = ""
    if wanted and (len(wanted) > MAX_ID_CHARS or text_problem(wanted)):
        missing = wanted[:MAX_ID_CHARS]
    elif wanted:
        try:
            notification = notification_view(await notification_trace(console.herald.db, wanted))
        except NotFound:
            missing = wanted
    return render(
        console,
        "trace.html",
        status=404 if missing else 200,
        title="trace.title",
        nav="trace",
        wanted=wanted[:MAX_ID_CHARS],
        missing=missing,
        n=notification,
        created_at=_time(notification["created_at"]) if notification else None,
        send_at=_time(notification["send_at"]) if notification else None,
        expires_at=_time(notification["expires_at"]) if notification else None,
        deliveries=timeline(notification) if notification else [],
    )
