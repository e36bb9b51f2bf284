"""Rendering the console's pages: one Jinja2 environment over ``web/templates/console/``, autoescape on
for every template (every value a page passes is escaped unless it is ``Markup``), the layout's
context (navigation, the translator, the CSRF field) and the headers every console answer carries.

Jinja2 is imported at the first page rendered, not when Herald starts (tests/test_footprint.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse, RedirectResponse, Response

from herald.web.console.auth import CSRF_FIELD, Console
from herald.web.console.i18n import LOCALES, NOTICES
from herald.web.console.nav import nav_for
from herald.web.console.static import asset_url

if TYPE_CHECKING:
    from jinja2 import Environment

# No inline script or style anywhere in the console: its pages load /console/static/ files only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold CSRF tokens and whatever the account may read
}


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def when(value: datetime | None) -> str:
    """A stored time as the console shows it: UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("herald.web", "templates/console"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,  # a misspelt variable is an error in the tests, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.globals["asset"] = asset_url
    return env


def csrf_field(console: Console) -> Any:
    """``<input type="hidden" name="csrf_token" value="…">`` for a form of this session."""
    from markupsafe import Markup, escape

    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(console.csrf_token))


def render(
    console: Console, template: str, *, status: int = 200, title: str = "", nav: str = "", **context: Any
) -> Response:
    """``template`` in the layout, for ``console``'s account and locale. ``title`` is a message key
    (the page's heading and ``<title>``), ``nav`` the key of the navigation entry to mark current."""
    request = console.request
    notice = request.query_params.get("notice", "")
    page = (
        environment()
        .get_template(template)
        .render(
            t=console.t,
            locale=console.locale,
            locales=LOCALES,
            account=console.session.account if console.session is not None else None,
            csrf=csrf_field(console),
            csrf_token=console.csrf_token,
            nav=nav_for(console, nav),
            title=title,
            notice=notice if notice in NOTICES else "",
            here=quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/"),
            **context,
        )
    )
    return secured(HTMLResponse(page, status_code=status))


def redirect(path: str, *, notice: str | None = None) -> Response:
    """303 to ``path`` (after a POST: the browser GETs it), with a notice key to show there."""
    if notice is not None:
        assert notice in NOTICES, f"unknown notice {notice!r}: add it to i18n.NOTICES"
        path += ("&" if "?" in path else "?") + "notice=" + notice
    return secured(RedirectResponse(path, status_code=303))
