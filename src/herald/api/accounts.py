"""Channels and channel accounts (API key): what each channel takes, and the accounts it sends with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from herald.api.auth import AdminKey, HeraldDep, ReadKey
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import ChannelAccountOut, ChannelAccountPage, ChannelList, documented
from herald.api.params import AccountName
from herald.api.schemas import ChannelAccountIn
from herald.api.views import account_view
from herald.core.errors import NotFound
from herald.engine import accounts as account_engine
from herald.engine.service import Herald
from herald.store import accounts as account_store

router = APIRouter(prefix="/v1", tags=["channels"], dependencies=[Depends(refuse_nul_in_url)])


def _view(herald: Herald, account: dict[str, Any]) -> dict[str, Any]:
    return account_view(
        account,
        account_engine.masked_config(herald.channels, account),
        account_engine.callback_url(herald.secret_key, herald.channels, account),
    )


@router.get("/channels", **documented(ChannelList))
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


@router.put("/channel-accounts/{name}", **documented(ChannelAccountOut))
async def put_account(
    name: AccountName, herald: HeraldDep, _: AdminKey, body: Annotated[ChannelAccountIn, Body()]
) -> dict[str, Any]:
    account = account_engine.AccountInput(
        name=name, channel=body.channel, config=body.config, default=body.default, group=body.group
    )
    saved = await account_engine.save_account(herald.db, herald.box, herald.channels, account)
    return _view(herald, saved)


@router.get("/channel-accounts", **documented(ChannelAccountPage))
async def list_accounts(herald: HeraldDep, _: AdminKey, channel: str | None = None) -> dict[str, Any]:
    async with herald.db.read() as conn:
        rows = await account_store.list_accounts(conn, herald.box, channel)
    return {"items": [_view(herald, a) for a in rows], "next_cursor": None}


@router.get("/channel-accounts/{name}", **documented(ChannelAccountOut))
async def get_account(name: AccountName, herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        account = await account_store.get_account(conn, herald.box, name)
    if account is None:
        raise NotFound("channel account")
    return _view(herald, account)


@router.delete("/channel-accounts/{name}", status_code=204, **documented(None, 204))
async def delete_account(name: AccountName, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await account_store.delete_account(conn, name):
            raise NotFound("channel account")
    return Response(status_code=204)
