"""One-click unsubscribe (RFC 8058): ``/unsubscribe/{token}``, without login (engine/unsubscribe.py).

- ``POST``: turns the type the link names off on its channel for its user, and only that (what a
  mail provider sends for ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, and what the
  page's button sends); answered with a short page. Doing it twice changes nothing more.
- ``GET``: a confirmation page (zh-CN or English, from ``Accept-Language``) whose button POSTs.
  It changes nothing: mail scanners and link previews fetch every link they see.

A link Herald did not sign (changed in any part, or signed with another key) is 404, as is one
whose user has been erased. These are pages for people, outside ``/v1`` and the OpenAPI document.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import HTMLResponse

from herald.api.auth import HeraldDep
from herald.core.locales import pick_locale
from herald.core.preferences import stored_preferences, turned_off
from herald.engine import preferences as preference_engine
from herald.engine.service import Herald
from herald.engine.unsubscribe import MAX_TOKEN_LENGTH, PATH, Unsubscribe, verify
from herald.store import preferences as preference_store
from herald.store import users as user_store

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Path(max_length=MAX_TOKEN_LENGTH)]
AcceptLanguage = Annotated[str | None, Header(max_length=1000)]
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the link is the credential: never in a Referer
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}
CHANNEL_NAMES = {"email": {"zh-CN": "邮件", "en": "email"}, "sms": {"zh-CN": "短信", "en": "SMS"}}
TEXT = {
    "zh-CN": {
        "title": "退订通知",
        "ask": "不再通过{channel}接收「{type}」通知？",
        "button": "退订",
        "done_title": "已退订",
        "done": "您将不再通过{channel}收到「{type}」通知。可随时在通知设置中重新开启。",
        "bad_title": "链接无效",
        "bad": "此退订链接无效或已失效。",
    },
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop receiving “{type}” notifications by {channel}?",
        "button": "Unsubscribe",
        "done_title": "Unsubscribed",
        "done": "You will no longer receive “{type}” notifications by {channel}."
        " You can turn them back on in your notification settings.",
        "bad_title": "Link not valid",
        "bad": "This unsubscribe link is not valid.",
    },
}


@router.get(PATH + "{token}", response_class=HTMLResponse)
async def confirm_unsubscribe(token: Token, herald: HeraldDep, accept_language: AcceptLanguage = None) -> HTMLResponse:
    language = _language(herald, accept_language)
    target = verify(herald.secret_key, token)
    if target is None or not await _user_exists(herald, target.user_id):
        return _invalid(language)
    text = TEXT[language]
    question = text["ask"].format(**await _names(herald, target, language))
    form = (
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{html.escape(text["button"])}</button></form>'
    )
    return _page(language, 200, text["title"], f"<p>{html.escape(question)}</p>{form}")


@router.post(PATH + "{token}", response_class=HTMLResponse)
async def unsubscribe(token: Token, herald: HeraldDep, accept_language: AcceptLanguage = None) -> HTMLResponse:
    language = _language(herald, accept_language)
    target = verify(herald.secret_key, token)
    if target is None or not await _turn_off(herald, target):
        return _invalid(language)
    text = TEXT[language]
    done = text["done"].format(**await _names(herald, target, language))
    return _page(language, 200, text["done_title"], f"<p>{html.escape(done)}</p>")


async def _turn_off(herald: Herald, target: Unsubscribe) -> bool:
    """The type off on the channel for the user, the rest of their document kept; False when the
    user no longer exists (erased: nothing is created for them again)."""
    async with herald.db.write() as conn:
        if await user_store.get_user(conn, target.user_id) is None:
            return False
        stored = await preference_store.get_document(conn, target.user_id, for_update=True)
        prefs = stored_preferences(stored[0] if stored else {})
        saved = await preference_engine.save(conn, target.user_id, turned_off(prefs, target.type_key, target.channel))
    preference_engine.announce(herald, saved)
    return True


async def _user_exists(herald: Herald, user_id: str) -> bool:
    async with herald.db.read() as conn:
        return await user_store.get_user(conn, user_id) is not None


async def _names(herald: Herald, target: Unsubscribe, language: str) -> dict[str, str]:
    entry = await herald.catalog.get(target.type_key)
    type_name = target.type_key
    if entry is not None:
        names = entry.type.get("names") or {}
        chosen = pick_locale(names.keys(), language, herald.settings.default_locale)
        type_name = names[chosen] if chosen else entry.type["name"]
    channel = CHANNEL_NAMES.get(target.channel, {}).get(language, target.channel)
    return {"type": type_name, "channel": channel}


def _language(herald: Herald, accept_language: str | None) -> str:
    """zh-CN or en: the first of the request's languages that is one of them, else the default's."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "zh-CN" if herald.settings.default_locale.lower().startswith("zh") else "en"


def _invalid(language: str) -> HTMLResponse:
    text = TEXT[language]
    return _page(language, 404, text["bad_title"], f"<p>{html.escape(text['bad'])}</p>")


def _page(language: str, status: int, title: str, body: str) -> HTMLResponse:
    page = (
        f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
        "button{font:inherit;padding:.5rem 1.25rem;cursor:pointer}</style></head>\n"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>\n"
    )
    return HTMLResponse(page, status_code=status, headers=HEADERS)
