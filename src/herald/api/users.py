"""Recipients (API key): upsert, read, erase, and user tokens for the widget."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from herald.api.auth import AdminKey, HeraldDep, ReadKey, SendKey
from herald.api.idempotency import Store, idempotent
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import TokenOut, UserOut, documented
from herald.api.params import UserId
from herald.api.schemas import TokenIn, UserIn
from herald.api.views import user_view
from herald.core.errors import Invalid, NotFound
from herald.engine.tokens import mint_user_token
from herald.store import users

router = APIRouter(prefix="/v1", tags=["users"], dependencies=[Depends(refuse_nul_in_url)])


@router.put("/users/{user_id}", **documented(UserOut))
async def put_user(user_id: UserId, body: UserIn, herald: HeraldDep, _: SendKey) -> dict[str, Any]:
    async with herald.db.write() as conn:
        user = await users.upsert_user(conn, user_id, body.model_dump(exclude_unset=True))
    return user_view(user)


@router.get("/users/{user_id}", **documented(UserOut))
async def get_user(user_id: UserId, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        user = await users.get_user(conn, user_id)
    if user is None:
        raise NotFound("user")
    return user_view(user)


@router.delete("/users/{user_id}", status_code=204, **documented(None, 204))
async def delete_user(user_id: UserId, herald: HeraldDep, _: AdminKey) -> Response:
    async with herald.db.write() as conn:
        if not await users.erase_user(conn, user_id):
            raise NotFound("user")
    return Response(status_code=204)


@router.post("/users/{user_id}/tokens", status_code=201, **documented(TokenOut, 201, idempotent=True))
async def create_token(
    user_id: UserId, herald: HeraldDep, key: SendKey, request: Request, body: TokenIn | None = None
) -> Response:
    expires_in = (body or TokenIn()).expires_in
    if expires_in > herald.settings.user_token_max_seconds:
        cap = herald.settings.user_token_max_seconds
        raise Invalid([("expires_in", f"at most {cap} seconds (HERALD_USER_TOKEN_MAX_SECONDS)")])

    async def handler(_store: Store | None) -> tuple[int, Any]:
        async with herald.db.write() as conn:
            await users.ensure_users(conn, [user_id])
        token, expires_at = mint_user_token(herald.secret_key, user_id, expires_in)
        return 201, {"token": token, "expires_at": expires_at.isoformat()}

    return await idempotent(request, herald, key.id, handler)
