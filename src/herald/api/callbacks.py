"""Providers' delivery reports: POST /v1/callbacks/{channel}/{account}?token=…

Authenticated by a per-account token in the URL (providers sign their callbacks differently or not
at all); the URL with its token is shown on the channel account.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from herald.api.auth import HeraldDep
from herald.api.openapi import JsonObject, documented
from herald.api.problems import problem
from herald.api.schemas import KEY_PATTERN
from herald.core.errors import NotFound
from herald.engine.receipts import apply_receipts, token_matches
from herald.store import accounts as account_store

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


@router.post("/{channel}/{account}", **documented(JsonObject, errors=(400, 401, 404)))
async def delivery_report(
    channel: Annotated[str, Path(max_length=40)],
    account: Annotated[str, Path(pattern=KEY_PATTERN)],
    request: Request,
    herald: HeraldDep,
    token: Annotated[str, Query(min_length=1, max_length=100)],
) -> JSONResponse:
    kind = herald.channels.get(channel)
    if kind is None or kind.receipt_ack is None:
        raise NotFound("callback")
    if not token_matches(herald.secret_key, channel, account, token):
        return problem(401, "callback token is not valid")
    async with herald.db.read() as conn:
        found = await account_store.get_account(conn, herald.box, account)
    if found is None or found["channel"] != channel:
        raise NotFound("channel account")
    try:
        receipts = kind.parse_receipts(await request.body())
    except (ValueError, TypeError) as exc:
        return problem(400, f"not a {channel} delivery report: {exc}", errors=[{"field": "body", "message": str(exc)}])
    await apply_receipts(herald, channel, receipts)
    return JSONResponse(kind.receipt_ack)
