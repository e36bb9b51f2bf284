"""The admin console (管理后台): server-rendered pages under ``/console`` (docs/console.md).

What a page is made of (the interface page-builders use):

- a router module in this package, its routes taking ``Viewer``, ``Operator`` or ``Admin``
  (``auth.py``): the session, CSRF and role checks are done before the route's code runs, and the
  route gets a ``Console`` (``console.account``, ``console.herald``, ``console.form``, ``console.t``);
- ``render(console, "page.html", title="key", nav="key", **values)`` (``render.py``): a template in
  ``web/templates/console/`` extending ``base.html``; autoescaped; ``{{ csrf }}`` in every POST form;
- ``redirect(path, notice="notice.key")`` after a change (303, the notice shown on the next page);
- ``audit(conn, console.account, "thing.verb", target, {details})`` (``store/console.py``) in the
  transaction that makes the change;
- its words in both catalogues of ``i18n.py``; its entry in ``nav.py``; its router in ``ROUTERS``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from herald.core.console import Role
from herald.store.console import audit
from herald.web.console import accounts, audit_log, dashboard, login, static, template_pages, trace, type_pages
from herald.web.console import announcements as announcement_pages
from herald.web.console import api_keys as api_key_pages
from herald.web.console import channel_accounts as channel_account_pages
from herald.web.console import event_webhooks as event_webhook_pages
from herald.web.console import send as send_page
from herald.web.console import users as user_pages
from herald.web.console.auth import (
    Admin,
    Console,
    ConsoleDenied,
    LoginRequired,
    Operator,
    Viewer,
    console_of,
    login_url,
    require_console,
)
from herald.web.console.render import redirect, render, secured

__all__ = [
    "Admin",
    "Console",
    "ConsoleDenied",
    "Operator",
    "Role",
    "Viewer",
    "audit",
    "install",
    "redirect",
    "render",
    "require_console",
]

fallback = APIRouter(include_in_schema=False)


@fallback.get("/console/{path:path}")
async def not_found(path: str) -> Response:
    """Any other ``/console/…`` page: the console's own 404 page (not the API's problem+json)."""
    if not path:  # /console/
        return redirect("/console")
    raise ConsoleDenied(404, "error.not_found")


# A new page's router goes before ``fallback``, which answers every /console path left.
ROUTERS = (
    static.router,
    login.router,
    dashboard.router,
    accounts.router,
    audit_log.router,
    trace.router,
    announcement_pages.router,
    send_page.router,
    channel_account_pages.router,
    api_key_pages.router,
    event_webhook_pages.router,
    user_pages.router,
    type_pages.router,
    template_pages.router,
    fallback,
)


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleDenied)
    console = console_of(request)
    try:  # the error page shows the navigation when the visitor is logged in
        from herald.store.types import utcnow
        from herald.web.console.auth import current_session

        console.session = await current_session(request, console.herald, utcnow())
    except LoginRequired:
        console.session = None
    response = render(
        console, "error.html", status=exc.status, title="error.title", message=console.t(exc.message, **exc.params)
    )
    response.headers.update(exc.headers)
    return response


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return secured(redirect(login_url(exc.next_path, exc.reason)))


def install(app: FastAPI) -> None:
    """The console's routes, its error pages and the dashboard's cache, on ``app``."""
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(ConsoleDenied, _denied)
    app.add_exception_handler(LoginRequired, _login_required)
    dashboard.install_state(app)
