"""``/console/trace``: "did the user get it?".

- ``?id=ntf_…`` (or a delivery id ``dlv_…``, which leads to its notification): one notification as a
  timeline — accepted, then each delivery with its attempts (account, code, error), its reason, whether
  the in-app item was read, and the answers to its actions. The data is exactly what
  ``GET /v1/notifications/{id}`` answers: the same engine function (engine/notifications.py
  ``notification_trace``) shaped by the same view.
- ``?user=…``: the user's view — profile, addresses, preferences, their inbox as they see it (the
  engine function behind ``GET /v1/me/inbox``) and their deliveries, newest first.
- ``?type=…``, ``?status=…``, ``?reason=…`` with a time window (``since``/``until``, UTC, the last
  24 hours unless given): notifications of a type, or deliveries by status or reason. Only indexed
  walks (store/trace_search.py), a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from herald.api.notifications import notification_view
from herald.api.views import inbox_item_view
from herald.core.cursor import BadCursor, decode_cursor, encode_cursor
from herald.core.enums import DeliveryStatus
from herald.core.errors import NotFound
from herald.core.inputs import text_problem
from herald.engine import inbox as inbox_engine
from herald.engine.notifications import notification_trace
from herald.store import endpoints as endpoint_store
from herald.store import preferences as preference_store
from herald.store import trace_search
from herald.store import users as user_store
from herald.store.types import utcnow
from herald.web.console.auth import Console, Viewer
from herald.web.console.form_errors import FieldErrors, utc_moment
from herald.web.console.render import render

router = APIRouter(include_in_schema=False)
MAX_ID_CHARS = 200
PAGE_SIZE = 50
INBOX_SIZE = 20
DEFAULT_WINDOW = timedelta(hours=24)
STATUSES = tuple(s.value for s in DeliveryStatus)
SEARCH_FIELDS = ("user", "type", "status", "reason", "since", "until")


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
    return sorted(rows, key=lambda d: (d["updated_at"] or datetime.min.replace(tzinfo=UTC), d["id"]))


@dataclass
class Search:
    """The search form as typed, and what it means."""

    typed: dict[str, str]
    errors: FieldErrors = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, str] | None = None

    @property
    def asked(self) -> bool:
        return any(self.typed[name] for name in SEARCH_FIELDS)


def _param(console: Console, name: str) -> str:
    return console.request.query_params.get(name, "").strip()[:MAX_ID_CHARS]


def _moment(search: Search, name: str) -> datetime | None:
    typed = utc_moment(search.typed[name])
    if typed is None:
        return None
    try:
        value = datetime.fromisoformat(typed.replace("z", "Z"))
    except ValueError:
        search.errors[name] = "not a time (YYYY-MM-DDTHH:MM, UTC)"
        return None
    if value.tzinfo is None or not 1970 <= value.astimezone(UTC).year <= 9000:
        search.errors[name] = "not a time (YYYY-MM-DDTHH:MM, UTC)"
        return None
    return value.astimezone(UTC)


def search_of(console: Console) -> Search:
    search = Search({name: _param(console, name) for name in SEARCH_FIELDS})
    for name, value in search.typed.items():
        if text_problem(value):
            search.errors[name] = "contains a NUL character or an invalid one"
            search.typed[name] = ""
    if search.typed["status"] and search.typed["status"] not in STATUSES:
        search.errors["status"] = f"one of {', '.join(STATUSES)}"
    if search.typed["type"] and (search.typed["status"] or search.typed["reason"] or search.typed["user"]):
        # a delivery does not hold its type: finding them by type would read every delivery of the window
        search.errors["type"] = (
            "search by type alone; a user's deliveries and a status or reason do not combine with it"
        )
    now = utcnow()
    until = _moment(search, "until") or now
    since = _moment(search, "since") or until - DEFAULT_WINDOW
    if since >= until:
        search.errors["until"] = "must be after since"
    search.since, search.until = since, until
    cursor = console.request.query_params.get("before", "")[:400]
    try:
        search.before = decode_cursor(cursor) if cursor else None
    except BadCursor:  # a cursor this page did not make: the first page
        search.before = None
    return search


async def _results(console: Console, search: Search) -> tuple[str, trace_search.Found | None]:
    """What the search finds: ``("notifications" | "deliveries", found)``."""
    typed = search.typed
    assert search.since is not None and search.until is not None
    async with console.herald.db.read() as conn:
        if typed["user"]:
            return "deliveries", await trace_search.deliveries_of_user(
                conn,
                typed["user"],
                status=typed["status"] or None,
                reason=typed["reason"] or None,
                since=search.since if typed["since"] else None,
                until=search.until if typed["until"] else None,
                before=search.before,
                limit=PAGE_SIZE,
            )
        if typed["status"] in trace_search.LIVE_STATUSES:
            found = await trace_search.queued_deliveries(
                conn, status=typed["status"], reason=typed["reason"] or None, limit=PAGE_SIZE
            )
            return "deliveries", found
        if typed["status"] or typed["reason"]:
            return "deliveries", await trace_search.ended_deliveries(
                conn,
                since=search.since,
                until=search.until,
                status=typed["status"] or None,
                reason=typed["reason"] or None,
                before=search.before,
                limit=PAGE_SIZE,
            )
        return "notifications", await trace_search.notifications_in(
            conn,
            since=search.since,
            until=search.until,
            type_key=typed["type"] or None,
            before=search.before,
            limit=PAGE_SIZE,
        )


async def user_view(console: Console, user_id: str) -> dict[str, Any]:
    """The user as the console shows them: profile, addresses, preferences, inbox (as they see it)."""
    herald = console.herald
    async with herald.db.read() as conn:
        profile = await user_store.get_user(conn, user_id)
        stored = await preference_store.get_document(conn, user_id)
        endpoints = {}
        for channel in sorted(herald.channels):
            found = (await endpoint_store.endpoints_of(conn, channel, [user_id])).get(user_id)
            if found:
                endpoints[channel] = [e.address for e in found]
    page = await inbox_engine.feed(
        herald, user_id, status="all", category=None, archived=False, cursor=None, limit=INBOX_SIZE
    )
    return {
        "id": user_id,
        "profile": profile,
        "endpoints": endpoints,
        "preferences": stored[0] if stored is not None else None,
        "preferences_at": stored[1] if stored is not None else None,
        "inbox": [
            {**_private(item), "created_at": _time(item["created_at"]), "read_at": _time(item["read_at"])}
            for item in (inbox_item_view(i) for i in page.items)
        ],
    }


def _private(item: dict[str, Any]) -> dict[str, Any]:
    """A direct-message item shows who wrote, never what: reading a conversation takes the audited
    ``conversations:read`` scope (api/direct.py), not a console viewer's look at an inbox."""
    if item["category"] != "direct":
        return item
    return {**item, "title": item["title"], "summary": None, "body": None, "data": {}}


def _next_link(search: Search, found: trace_search.Found | None) -> str | None:
    if found is None or found.next_before is None:
        return None
    params = {k: v for k, v in search.typed.items() if v}
    params["before"] = encode_cursor(*found.next_before)
    return "/console/trace?" + urlencode(params)


@router.get("/console/trace")
async def trace_page(console: Viewer) -> Response:
    wanted = console.request.query_params.get("id", "").strip()
    search = search_of(console)
    notification = None
    missing = ""
    highlight = ""
    if wanted and (len(wanted) > MAX_ID_CHARS or text_problem(wanted)):
        missing = wanted[:MAX_ID_CHARS]
    elif wanted:
        notification_id = wanted
        if wanted.startswith("dlv_"):
            async with console.herald.db.read() as conn:
                delivery = await trace_search.delivery_by_id(conn, wanted)
            notification_id = delivery["notification_id"] if delivery else ""
            highlight = wanted
        try:
            if not notification_id:
                raise NotFound("delivery")
            notification = notification_view(await notification_trace(console.herald.db, notification_id))
        except NotFound:
            missing = wanted
    kind, found, person = "", None, None
    if not wanted and search.asked and not search.errors:
        kind, found = await _results(console, search)
        if search.typed["user"]:
            person = await user_view(console, search.typed["user"])
    return render(
        console,
        "trace.html",
        status=404 if missing else (422 if search.errors else 200),
        title="trace.title",
        nav="trace",
        wanted=wanted[:MAX_ID_CHARS],
        missing=missing,
        highlight=highlight,
        n=notification,
        created_at=_time(notification["created_at"]) if notification else None,
        send_at=_time(notification["send_at"]) if notification else None,
        expires_at=_time(notification["expires_at"]) if notification else None,
        deliveries=timeline(notification) if notification else [],
        responses=[{**r, "at": _time(r["at"])} for r in notification.get("responses", [])] if notification else [],
        search=search,
        errors=search.errors,
        statuses=STATUSES,
        kind=kind,
        found=found,
        person=person,
        next_link=_next_link(search, found),
        window=(search.since, search.until),
        cap=trace_search.EXAMINED_CAP,
    )
