"""``GET /console/audit``: the audit log (admins only), newest first, 50 a page, filtered by who
(``actor``) and by ``action``; ``before`` is the opaque cursor of the last entry of the previous page."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from herald.core.cursor import BadCursor, decode_cursor, encode_cursor
from herald.core.inputs import text_problem
from herald.store import console as console_store
from herald.web.console.auth import Admin
from herald.web.console.render import render

PAGE_SIZE = 50
router = APIRouter(include_in_schema=False)


def _param(console: Admin, name: str, max_chars: int) -> str | None:
    value = console.request.query_params.get(name, "").strip()
    if not value or len(value) > max_chars or text_problem(value):
        return None
    return value


def details_text(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""


@router.get("/console/audit")
async def audit_page(console: Admin) -> Response:
    actor = _param(console, "actor", 200)
    action = _param(console, "action", 100)
    cursor = _param(console, "before", 400)
    try:
        before = decode_cursor(cursor) if cursor else None
    except BadCursor:  # a cursor this page did not make: the first page
        before = None
    async with console.herald.db.read() as conn:
        entries = await console_store.list_audit(conn, limit=PAGE_SIZE + 1, before=before, actor=actor, action=action)
        actions = await console_store.audit_actions(conn)
    query = {k: v for k, v in (("actor", actor), ("action", action)) if v}
    return render(
        console,
        "audit.html",
        title="audit.title",
        nav="audit",
        entries=entries[:PAGE_SIZE],
        older=encode_cursor(entries[PAGE_SIZE - 1].at, entries[PAGE_SIZE - 1].id) if len(entries) > PAGE_SIZE else None,
        paged=before is not None,
        actor=actor or "",
        action=action or "",
        actions=actions,
        query=query,
        details_text=details_text,
    )
