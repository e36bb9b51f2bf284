"""``herald serve --demo``: ``/demo``, the inbox widget for the demo user and a button that sends them
a notification, so a newcomer sees the bell light up in their own browser.

Mounted only in demo mode. Everything here acts for the demo user alone: the page embeds a user
token for that user (never an API key), ``POST /demo/notify`` sends only to that user and refuses a
token of anyone else, and ``POST /demo/token`` mints only that user's tokens (what a business
backend's token endpoint does for its logged-in user). The page is for one person's machine: do not
run ``--demo`` where others can reach it.
"""

from __future__ import annotations

import html
import random
import secrets
from datetime import datetime
from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

from herald.api.auth import CurrentUser, HeraldDep
from herald.core.errors import Invalid
from herald.engine.bootstrap import DEMO_TYPE, DEMO_USER
from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.engine.trigger import TriggerRequest, trigger

DEMO_PAGE_TOKEN_SECONDS = 12 * 3600
# The page's own inline script and the widget's shadow-DOM style; requests to this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

router = APIRouter(include_in_schema=False)


def demo_token(herald: Herald) -> tuple[str, datetime]:
    """A user token for the demo user, within the server's lifetime cap."""
    lifetime = min(DEMO_PAGE_TOKEN_SECONDS, herald.settings.user_token_max_seconds)
    return mint_user_token(herald.secret_key, DEMO_USER, lifetime)


def render_page(token: str) -> str:
    page = files("herald.web").joinpath("templates", "demo.html").read_text(encoding="utf-8")
    return page.replace("{{token}}", html.escape(token, quote=True)).replace("{{user}}", html.escape(DEMO_USER))


DEMO_ADMIN = "admin"


async def ensure_demo_admin(herald: Herald) -> str | None:
    """A console admin named ``admin`` with a new random password, returned to be printed once,
    when the database has no console account at all (a restart with ``--demo`` creates nothing)."""
    from herald.core.console import Role
    from herald.core.passwords import hash_password
    from herald.store import console as console_store

    password = secrets.token_urlsafe(12)
    encoded = hash_password(password)
    async with herald.db.write() as conn:
        if await console_store.count_accounts(conn):
            return None
        account = await console_store.create_account(conn, DEMO_ADMIN, Role.ADMIN, encoded)
        await console_store.audit(conn, "demo", "account.create", DEMO_ADMIN, {"role": "admin", "id": account.id})
    return password


@router.get("/demo")
async def demo_page(herald: HeraldDep) -> HTMLResponse:
    token, _ = demo_token(herald)
    return HTMLResponse(
        render_page(token),
        headers={
            "Cache-Control": "no-store",  # it holds a token
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/demo/token")
async def demo_new_token(herald: HeraldDep) -> JSONResponse:
    token, expires_at = demo_token(herald)
    return JSONResponse({"token": token, "expires_at": expires_at.isoformat()}, headers={"Cache-Control": "no-store"})


@router.post("/demo/notify", status_code=202)
async def demo_notify(user_id: CurrentUser, herald: HeraldDep) -> JSONResponse:
    if user_id != DEMO_USER:
        raise HTTPException(403, f"the demo sends to the demo user '{DEMO_USER}' only")
    amount = f"{random.randint(1, 500)}.00"  # a demo figure, not a secret
    try:
        accepted = await trigger(herald, TriggerRequest(type=DEMO_TYPE, to=[DEMO_USER], data={"amount": amount}))
    except Invalid as exc:
        raise HTTPException(
            409,
            f"cannot send the demo notification ({exc}): `herald serve --demo` seeds the type '{DEMO_TYPE}' "
            "into an empty database only; start it on a new database to see the demo",
        ) from exc
    return JSONResponse(accepted.as_json(), status_code=202)
