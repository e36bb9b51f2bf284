"""Preferences: ``GET``/``PUT /v1/me/preferences`` (user token) and ``/v1/users/{id}/preferences``
(admin API key). Both answer the same shape: the document (core/preferences.py), when it was
saved, and the catalogue a settings page needs (the categories, every type the user can receive
with its channels, names and whether it is critical, the channels, the quiet-hours timezone).

A PUT replaces the whole document. The read-only fields of the answer (``catalogue``,
``updated_at``) are ignored in a PUT, so a page may send back what it read, changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from herald.api.auth import AdminKey, CurrentUser, HeraldDep
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import _Out, documented
from herald.api.params import UserId
from herald.core.enums import Category
from herald.core.errors import NotFound
from herald.core.locales import pick_locale
from herald.core.preferences import quiet_timezone, stored_preferences
from herald.engine import preferences as preference_engine
from herald.engine.service import Herald
from herald.store import catalog
from herald.store import preferences as preference_store
from herald.store import users as user_store

router = APIRouter(prefix="/v1", tags=["preferences"], dependencies=[Depends(refuse_nul_in_url)])
READ_ONLY = ("catalogue", "updated_at")
CATEGORY_NAMES = {
    Category.REMINDER: {"zh-CN": "系统提醒", "en": "Reminders"},
    Category.ANNOUNCEMENT: {"zh-CN": "系统通告", "en": "Announcements"},
    Category.DIRECT: {"zh-CN": "个人私信", "en": "Direct messages"},
}
TYPES_PAGE = 500


# -- documentation of the shapes (api/openapi.py) ------------------------------------------------------


class PreferenceChoice(_Out):
    enabled: bool | None = None
    channels: dict[str, bool] = Field(default_factory=dict)


class QuietHoursOut(_Out):
    start: str = Field(description="HH:MM, local wall-clock time")
    end: str = Field(description="HH:MM; before start: the window runs over midnight")
    timezone: str | None = Field(description="IANA name; null: the profile's timezone, else the deployment's")


class CatalogueName(_Out):
    key: str
    name: str = Field(description="In the user's locale")
    names: dict[str, str] = Field(default_factory=dict, description="`{locale: name}`")


class CatalogueChannel(_Out):
    key: str
    name: str


class CatalogueType(CatalogueName):
    category: str
    channels: list[str]
    critical: bool = Field(description="Critical types bypass preferences and quiet hours")
    quiet_hours: str = Field(description="What the type does in quiet hours: defer | drop | deliver")


class Catalogue(_Out):
    timezone: str = Field(description="The timezone quiet hours are kept in for this user")
    channels: list[CatalogueChannel]
    categories: list[CatalogueName]
    types: list[CatalogueType]


class PreferencesOut(_Out):
    channels: dict[str, bool]
    categories: dict[str, PreferenceChoice]
    types: dict[str, PreferenceChoice]
    quiet_hours: QuietHoursOut | None
    updated_at: str | None = Field(description="When the document was saved; null: never")
    catalogue: Catalogue


class _Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    channels: dict[str, bool | None] | None = None


class _QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["08:00"])
    timezone: str | None = Field(default=None, examples=["Asia/Shanghai"])


class PreferencesIn(BaseModel):
    """The document: the most specific setting wins (type × channel > type > category × channel >
    category > channel); left out or null: not set (allowed)."""

    model_config = ConfigDict(extra="allow")
    channels: dict[str, bool | None] | None = None
    categories: dict[str, _Choice | None] | None = None
    types: dict[str, _Choice | None] | None = None
    quiet_hours: _QuietHours | None = None


Document = Annotated[dict[str, Any], Body(description="The preferences document (a PUT replaces it)")]


# -- routes -----------------------------------------------------------------------------------------


@router.get("/me/preferences", **documented(PreferencesOut))
async def get_my_preferences(user_id: CurrentUser, herald: HeraldDep) -> dict[str, Any]:
    return await _read(herald, user_id, must_exist=False)


@router.put("/me/preferences", **documented(PreferencesOut, request_body=PreferencesIn))
async def put_my_preferences(user_id: CurrentUser, herald: HeraldDep, body: Document) -> dict[str, Any]:
    await _write(herald, user_id, body)
    return await _read(herald, user_id, must_exist=False)


@router.get("/users/{user_id}/preferences", **documented(PreferencesOut))
async def get_user_preferences(user_id: UserId, herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    return await _read(herald, user_id, must_exist=True)


@router.put("/users/{user_id}/preferences", **documented(PreferencesOut, request_body=PreferencesIn))
async def put_user_preferences(user_id: UserId, herald: HeraldDep, _: AdminKey, body: Document) -> dict[str, Any]:
    await _write(herald, user_id, body)
    return await _read(herald, user_id, must_exist=True)


async def _write(herald: Herald, user_id: str, body: dict[str, Any]) -> None:
    prefs = preference_engine.check_document(herald, {k: v for k, v in body.items() if k not in READ_ONLY})
    async with herald.db.write() as conn:
        saved = await preference_engine.save(conn, user_id, prefs)
    preference_engine.announce(herald, saved)


async def _read(herald: Herald, user_id: str, *, must_exist: bool) -> dict[str, Any]:
    async with herald.db.read() as conn:
        user = await user_store.get_user(conn, user_id)
        if user is None and must_exist:
            raise NotFound("user")
        stored = await preference_store.get_document(conn, user_id)
        types = await _all_types(conn)
    document, updated_at = stored if stored is not None else ({}, None)
    return _view(herald, document, updated_at, user, types)


async def _all_types(conn: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = await catalog.list_types(conn, after=rows[-1]["key"] if rows else None, limit=TYPES_PAGE)
        rows.extend(page)
        if len(page) < TYPES_PAGE:
            return rows


def _view(
    herald: Herald,
    document: dict[str, Any],
    updated_at: datetime | None,
    user: Mapping[str, Any] | None,
    types: list[dict[str, Any]],
) -> dict[str, Any]:
    prefs = stored_preferences(document)
    locale = (user or {}).get("locale")
    default = herald.settings.default_locale
    used = sorted({c for t in types for c in t["channels"]} | {"inapp"})
    return {
        **prefs.as_json(),
        "updated_at": updated_at.isoformat() if updated_at else None,
        "catalogue": {
            "timezone": quiet_timezone(prefs, (user or {}).get("timezone"), herald.settings.default_timezone),
            "channels": [
                {"key": c, "name": (channel.title if (channel := herald.channels.get(c)) else "") or c} for c in used
            ],
            "categories": [
                {"key": c.value, "name": _localized(names, c.value, locale, default), "names": names}
                for c, names in CATEGORY_NAMES.items()
            ],
            "types": [
                {
                    "key": t["key"],
                    "name": _localized(t.get("names") or {}, t["name"], locale, default),
                    "names": t.get("names") or {},
                    "category": t["category"],
                    "channels": t["channels"],
                    "critical": bool(t["critical"]),
                    "quiet_hours": t.get("quiet_hours") or "defer",
                }
                for t in types
            ],
        },
    }


def _localized(names: Mapping[str, str], fallback: str, locale: str | None, default: str) -> str:
    chosen = pick_locale(names.keys(), locale, default)
    return names[chosen] if chosen else fallback
