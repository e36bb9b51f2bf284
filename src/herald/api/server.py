"""Server-side endpoints (API key): users, types, templates, notifications, announcements, channels."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import ValidationError

from herald.api.auth import AdminKey, HeraldDep, ReadKey, SendKey
from herald.api.idempotency import Store, idempotent
from herald.api.limits import refuse_nul_in_url
from herald.api.schemas import (
    KEY_PATTERN,
    AnnouncementIn,
    AnnouncementPatch,
    ChannelAccountIn,
    Locale,
    NotificationTypeIn,
    PreviewIn,
    TemplateIn,
    TokenIn,
    TriggerIn,
    UserIn,
    WechatSubscriptionIn,
    nul_path,
)
from herald.api.views import (
    account_view,
    announcement_view,
    delivery_view,
    inapp_delivery_view,
    is_masked,
    reveal,
    type_view,
    user_view,
)
from herald.core.cursor import decode_cursor, decode_key_cursor, encode_cursor, encode_key_cursor
from herald.core.enums import AnnouncementKind
from herald.core.errors import Invalid, NotFound, TemplateError
from herald.core.ids import new_id
from herald.core.locales import pick_locale
from herald.core.templates import render_fields, validate_fields
from herald.engine import trigger as trigger_engine
from herald.engine.receipts import callback_token
from herald.engine.tokens import mint_user_token
from herald.store import accounts as account_store
from herald.store import announcements as ann_store
from herald.store import catalog, quotas, users
from herald.store import deliveries as delivery_store
from herald.store import inbox as inbox_store
from herald.store import notifications as notification_store
from herald.store.types import utcnow

router = APIRouter(prefix="/v1", dependencies=[Depends(refuse_nul_in_url)])
UserId = Annotated[str, Path(min_length=1, max_length=200)]
TypeKey = Annotated[str, Path(pattern=KEY_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=100)]
# as on /v1/me/inbox: a cursor this API gave is far shorter, and a long one could nest JSON past the recursion limit
Cursor = Annotated[str | None, Query(max_length=500)]
DELIVERY_LIST_CAP = 1000


# -- users ----------------------------------------------------------------------------------------


@router.put("/users/{user_id}", tags=["users"])
async def put_user(user_id: UserId, body: UserIn, herald: HeraldDep, _: SendKey) -> dict[str, Any]:
    async with herald.db.write() as conn:
        user = await users.upsert_user(conn, user_id, body.model_dump(exclude_unset=True))
    return user_view(user)


@router.get("/users/{user_id}", tags=["users"])
async def get_user(user_id: UserId, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        user = await users.get_user(conn, user_id)
    if user is None:
        raise NotFound("user")
    return user_view(user)


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
async def delete_user(user_id: UserId, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await users.erase_user(conn, user_id):
            raise NotFound("user")
    return Response(status_code=204)


@router.post("/users/{user_id}/tokens", status_code=201, tags=["users"])
async def create_token(
    user_id: UserId, herald: HeraldDep, key: SendKey, request: Request, body: TokenIn | None = None
) -> Response:
    expires_in = (body or TokenIn()).expires_in

    async def handler(_store: Store | None) -> tuple[int, Any]:
        async with herald.db.write() as conn:
            await users.ensure_users(conn, [user_id])
        token, expires_at = mint_user_token(herald.secret_key, user_id, expires_in)
        return 201, {"token": token, "expires_at": expires_at.isoformat()}

    return await idempotent(request, herald, key.id, handler)


WECHAT_MP_QUOTA = "wechat_mp:{template_id}"


@router.post("/users/{user_id}/wechat-subscriptions", status_code=201, tags=["users"])
async def grant_wechat_subscriptions(
    user_id: UserId, body: WechatSubscriptionIn, herald: HeraldDep, key: SendKey, request: Request
) -> Response:
    """Record one-time subscription grants for a mini-program template; each send consumes one."""

    async def handler(store: Store | None) -> tuple[int, Any]:
        async with herald.db.write() as conn:
            await users.ensure_users(conn, [user_id])
            left = await quotas.grant(
                conn, user_id, WECHAT_MP_QUOTA.format(template_id=body.template_id), body.count, utcnow()
            )
            answer = {"user_id": user_id, "template_id": body.template_id, "remaining": left}
            if store is not None:
                await store(conn, 201, answer)
        return 201, answer

    return await idempotent(request, herald, key.id, handler)


# -- notification types and templates ------------------------------------------------------------


def _check_channels(herald: Any, channels: list[str], field: str = "channels") -> None:
    unknown = [(f"{field}.{i}", f"unknown channel '{c}'") for i, c in enumerate(channels) if c not in herald.channels]
    if unknown:
        raise Invalid(unknown)


@router.put("/notification-types/{key}", tags=["types"])
async def put_type(
    key: TypeKey, body: NotificationTypeIn, herald: HeraldDep, _: AdminKey, response: Response
) -> dict[str, Any]:
    _check_channels(herald, body.channels)
    fields = body.model_dump(mode="json")
    fields["name"] = fields["name"] or key
    fields["channels"] = list(dict.fromkeys(body.channels))
    async with herald.db.write() as conn:
        row, created = await catalog.put_type(conn, key, fields)
    if created:
        response.status_code = 201
    return type_view(row)


@router.get("/notification-types", tags=["types"])
async def list_types(herald: HeraldDep, _: ReadKey, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    after = decode_key_cursor(cursor) if cursor else None
    async with herald.db.read() as conn:
        rows = await catalog.list_types(conn, after=after, limit=limit + 1)
    page = rows[:limit]
    return {
        "items": [type_view(r) for r in page],
        "next_cursor": encode_key_cursor(page[-1]["key"]) if len(rows) > limit else None,
    }


@router.get("/notification-types/{key}", tags=["types"])
async def get_type(key: TypeKey, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        row = await catalog.get_type(conn, key)
        if row is None:
            raise NotFound("notification type")
        templates = await catalog.get_templates(conn, key)
    return type_view(row) | {"templates": templates}


@router.delete("/notification-types/{key}", status_code=204, tags=["types"])
async def delete_type(key: TypeKey, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await catalog.delete_type(conn, key):
            raise NotFound("notification type")
    return Response(status_code=204)


@router.put("/notification-types/{key}/templates/{channel}", tags=["types"])
async def put_template(
    key: TypeKey,
    channel: Annotated[str, Path(max_length=40)],
    body: TemplateIn,
    herald: HeraldDep,
    _: AdminKey,
    locale: Annotated[Locale | None, Query()] = None,
) -> dict[str, Any]:
    if channel not in herald.channels:
        raise Invalid([("channel", f"unknown channel '{channel}'")])
    fields = body.model_dump(exclude_none=True)
    if not fields:
        raise Invalid([("body", "a template needs at least one field (title, body, ...)")])
    if (where := nul_path(fields)) is not None:
        raise Invalid([(where, "contains a NUL character")])
    try:
        validate_fields(fields)
    except TemplateError as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc
    template_model = herald.channels[channel].Template
    if template_model is not None:  # the channel's own fields: SMS template code, robot msgtype, ...
        try:
            template_model.model_validate(fields)
        except ValidationError as exc:
            raise Invalid([(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()]) from exc
    async with herald.db.write() as conn:
        if await catalog.get_type(conn, key) is None:
            raise NotFound("notification type")
        saved = await catalog.put_template(conn, key, channel, locale or herald.settings.default_locale, fields)
    return saved | {"updated_at": saved["updated_at"].isoformat()}


@router.delete("/notification-types/{key}/templates/{channel}", status_code=204, tags=["types"])
async def delete_template(
    key: TypeKey,
    channel: Annotated[str, Path(max_length=40)],
    herald: HeraldDep,
    _: AdminKey,
    locale: Annotated[Locale | None, Query()] = None,
) -> Response:
    async with herald.db.write() as conn:
        if not await catalog.delete_template(conn, key, channel, locale or herald.settings.default_locale):
            raise NotFound("template")
    return Response(status_code=204)


@router.post("/templates/preview", tags=["types"])
async def preview(body: PreviewIn, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        if await catalog.get_type(conn, body.type) is None:
            raise Invalid([("type", f"unknown notification type '{body.type}'")])
        templates = (await catalog.get_templates(conn, body.type)).get(body.channel, {})
    locale = pick_locale(templates.keys(), body.locale, herald.settings.default_locale)
    if locale is None:
        raise Invalid([("channel", f"type '{body.type}' has no template for channel '{body.channel}'")])
    try:
        rendered = render_fields(templates[locale], body.data)
    except TemplateError as exc:
        raise Invalid([(f"data.{exc.variable}" if exc.variable else "data", exc.message)]) from exc
    return {"type": body.type, "channel": body.channel, "locale": locale, "fields": rendered}


# -- notifications --------------------------------------------------------------------------------


@router.post("/notifications", status_code=202, tags=["notifications"])
async def trigger(body: TriggerIn, herald: HeraldDep, key: SendKey, request: Request) -> Response:
    req = trigger_engine.TriggerRequest(
        type=body.type,
        to=[r if isinstance(r, str) else r.model_dump(exclude_unset=True) for r in body.to]
        if body.to is not None
        else None,
        audience=_audience(body.audience),
        data=body.data,
        actor=body.actor,
        target=body.target,
        send_at=body.send_at,
        expires_at=body.expires_at,
        channels=body.channels,
    )

    async def handler(store: Store | None) -> tuple[int, Any]:
        async def on_commit(conn: Any, accepted: trigger_engine.Accepted) -> None:
            if store is not None:
                await store(conn, 202, accepted.as_json())

        accepted = await trigger_engine.trigger(herald, req, on_commit=on_commit)
        return 202, accepted.as_json()

    return await idempotent(request, herald, key.id, handler)


def _audience(audience: Any) -> dict[str, Any] | None:
    if audience is None:
        return None
    try:
        return audience.as_dict()  # type: ignore[no-any-return]
    except ValueError as exc:
        raise Invalid([("audience", str(exc))]) from exc


@router.get("/notifications/{notification_id}", tags=["notifications"])
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


@router.delete("/notifications/{notification_id}", tags=["notifications"])
async def cancel_notification(notification_id: str, herald: HeraldDep, _: SendKey) -> dict[str, Any]:
    now = utcnow()
    async with herald.db.write() as conn:
        n = await notification_store.get_notification(conn, notification_id)
        if n is None:
            raise NotFound("notification")
        cancelled = await delivery_store.cancel_pending(conn, notification_id, now)
        if n["status"] in ("scheduled", "expanding", "accepted"):
            await notification_store.set_notification_status(conn, notification_id, "cancelled", now)
            status = "cancelled"
        else:
            status = n["status"]
    return {"id": notification_id, "status": status, "cancelled_deliveries": cancelled}


# -- announcements --------------------------------------------------------------------------------


def _check_window(starts_at: Any, ends_at: Any) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise Invalid([("ends_at", "must be after starts_at")])


@router.post("/announcements", status_code=201, tags=["announcements"])
async def create_announcement(body: AnnouncementIn, herald: HeraldDep, key: AdminKey, request: Request) -> Response:
    _check_window(body.starts_at, body.ends_at)
    audience = _audience(body.audience)

    async def handler(store: Store | None) -> tuple[int, Any]:
        now = utcnow()
        row = body.model_dump(exclude={"audience"}) | {
            "id": new_id("ann"),
            "audience": audience,
            "feed_at": max(now, body.starts_at or now),
            "created_at": now,
            "updated_at": now,
        }
        row["kind"], row["content_type"] = body.kind.value, body.content_type.value
        async with herald.db.write() as conn:
            await ann_store.create_announcement(conn, row)
            saved = await ann_store.get_announcement(conn, row["id"])  # times come back in UTC
            assert saved is not None
            if store is not None:
                await store(conn, 201, announcement_view(saved))
        herald.announcements.invalidate()
        return 201, announcement_view(saved)

    return await idempotent(request, herald, key.id, handler)


@router.get("/announcements", tags=["announcements"])
async def list_announcements(
    herald: HeraldDep, _: ReadKey, limit: Limit = 20, cursor: Cursor = None, kind: AnnouncementKind | None = None
) -> dict[str, Any]:
    before = decode_cursor(cursor) if cursor else None
    async with herald.db.read() as conn:
        rows = await ann_store.list_announcements(
            conn, before=before, limit=limit + 1, kind=kind.value if kind else None
        )
    page = rows[:limit]
    return {
        "items": [announcement_view(r) for r in page],
        "next_cursor": encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None,
    }


@router.get("/announcements/{announcement_id}", tags=["announcements"])
async def get_announcement(announcement_id: str, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        row = await ann_store.get_announcement(conn, announcement_id)
    if row is None:
        raise NotFound("announcement")
    return announcement_view(row)


@router.patch("/announcements/{announcement_id}", tags=["announcements"])
async def patch_announcement(
    announcement_id: str, body: AnnouncementPatch, herald: HeraldDep, _: AdminKey
) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True, mode="python")
    if "audience" in values:
        values["audience"] = _audience(body.audience)
    for k in ("kind", "content_type"):
        if values.get(k) is not None:
            values[k] = values[k].value
    for k in ("title", "kind", "content_type", "audience"):
        if k in values and values[k] is None:
            raise Invalid([(k, "may not be null")])
    async with herald.db.write() as conn:
        row = await ann_store.get_announcement(conn, announcement_id)
        if row is None:
            raise NotFound("announcement")
        _check_window(values.get("starts_at", row["starts_at"]), values.get("ends_at", row["ends_at"]))
        values["updated_at"] = utcnow()
        if "starts_at" in values:  # its place in the feed follows the moment it goes live
            values["feed_at"] = max(row["created_at"], values["starts_at"] or row["created_at"])
        await ann_store.update_announcement(conn, announcement_id, values)
        row = await ann_store.get_announcement(conn, announcement_id)
    herald.announcements.invalidate()
    assert row is not None
    return announcement_view(row)


@router.delete("/announcements/{announcement_id}", status_code=204, tags=["announcements"])
async def delete_announcement(announcement_id: str, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await ann_store.delete_announcement(conn, announcement_id):
            raise NotFound("announcement")
    herald.announcements.invalidate()
    return Response(status_code=204)


public_router = APIRouter(prefix="/v1", tags=["channels"])


@public_router.get("/webpush/public-key")
async def webpush_public_key(herald: HeraldDep) -> dict[str, Any]:
    """The applicationServerKey browsers subscribe with (public by nature: no credentials needed)."""
    async with herald.db.read() as conn:
        accounts = await account_store.list_accounts(conn, herald.box, "webpush")
    account = next((a for a in accounts if a["default"]), accounts[0] if accounts else None)
    if account is None or not (account["config"] or {}).get("vapid_public_key"):
        raise NotFound("Web Push account")
    return {"public_key": account["config"]["vapid_public_key"], "account": account["name"]}


# -- channels and channel accounts ---------------------------------------------------------------


@router.get("/channels", tags=["channels"])
async def list_channels(herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    return {
        "items": [
            {
                "name": name,
                "title": channel.title or name,
                "requires_account": channel.requires_account,
                "requires_template": channel.requires_template,
                "secret_fields": channel.Settings.secret_fields(),
                "settings_schema": channel.Settings.model_json_schema(),
                "template_schema": channel.Template.model_json_schema() if channel.Template else None,
                "rate_limit": (
                    {"count": channel.rate_limit.count, "per_seconds": channel.rate_limit.per_seconds}
                    if channel.rate_limit
                    else None
                ),
            }
            for name, channel in herald.channels.items()
        ]
    }


AccountName = Annotated[str, Path(pattern=KEY_PATTERN)]


@router.put("/channel-accounts/{name}", tags=["channels"])
async def put_account(
    name: AccountName, herald: HeraldDep, _: AdminKey, body: Annotated[ChannelAccountIn, Body()]
) -> dict[str, Any]:
    channel = herald.channels.get(body.channel)
    if channel is None:
        raise Invalid([("channel", f"unknown channel '{body.channel}'")])
    if not channel.requires_account:
        raise Invalid([("channel", f"channel '{body.channel}' takes no account")])
    secrets = channel.Settings.secret_fields()
    async with herald.db.write() as conn:
        existing = await account_store.get_account(conn, herald.box, name)
        config = dict(body.config)
        # A masked secret sent back unchanged (a console form round-trip) keeps the stored one.
        for key in secrets:
            if is_masked(config.get(key)):
                kept = existing["config"] if existing and existing["channel"] == body.channel else None
                if not kept or key not in kept:
                    raise Invalid([(f"config.{key}", "send the secret itself, not the mask")])
                config[key] = kept[key]
        stored = existing["config"] if existing and existing["channel"] == body.channel else None
        config = channel.complete_settings(config, stored)
        try:
            settings = channel.Settings.model_validate(config)
        except ValidationError as exc:
            raise Invalid([("config." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]) from exc
        account = await account_store.put_account(conn, herald.box, name, body.channel, reveal(settings), body.default)
    return account_view(account, secrets, _callback_url(herald, account))


def _callback_url(herald: Any, account: dict[str, Any]) -> str | None:
    """Where the provider should post delivery reports for this account (path and token)."""
    kind = herald.channels.get(account["channel"])
    if kind is None or kind.receipt_ack is None:
        return None
    token = callback_token(herald.secret_key, account["channel"], account["name"])
    return f"/v1/callbacks/{account['channel']}/{account['name']}?token={token}"


def _secrets_of(herald: Any, channel: str) -> list[str]:
    kind = herald.channels.get(channel)
    return kind.Settings.secret_fields() if kind else []


@router.get("/channel-accounts", tags=["channels"])
async def list_accounts(herald: HeraldDep, _: AdminKey, channel: str | None = None) -> dict[str, Any]:
    async with herald.db.read() as conn:
        rows = await account_store.list_accounts(conn, herald.box, channel)
    return {
        "items": [account_view(a, _secrets_of(herald, a["channel"]), _callback_url(herald, a)) for a in rows],
        "next_cursor": None,
    }


@router.get("/channel-accounts/{name}", tags=["channels"])
async def get_account(name: AccountName, herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        account = await account_store.get_account(conn, herald.box, name)
    if account is None:
        raise NotFound("channel account")
    return account_view(account, _secrets_of(herald, account["channel"]), _callback_url(herald, account))


@router.delete("/channel-accounts/{name}", status_code=204, tags=["channels"])
async def delete_account(name: AccountName, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await account_store.delete_account(conn, name):
            raise NotFound("channel account")
    return Response(status_code=204)
