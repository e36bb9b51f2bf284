"""API key management: list and revoke. Keys are created by `herald apikey create`, which prints the
key once; an HTTP endpoint would have to keep the plaintext for Idempotency-Key replays."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from herald.api.auth import AdminKey, HeraldDep
from herald.api.openapi import ApiKeyPage, documented
from herald.core.errors import NotFound
from herald.store.apikeys import list_api_keys, revoke_api_key

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


def _t(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.get("", **documented(ApiKeyPage))
async def list_keys(herald: HeraldDep, _: AdminKey) -> dict[str, Any]:
    async with herald.db.read() as conn:
        rows = await list_api_keys(conn)
    return {
        "items": [
            {
                "id": r["id"],
                "name": r["name"],
                "prefix": r["prefix"],
                "scopes": r["scopes"],
                "created_at": _t(r["created_at"]),
                "revoked_at": _t(r["revoked_at"]),
            }
            for r in rows
        ],
        "next_cursor": None,
    }


@router.delete("/{key_id}", status_code=204, **documented(None, 204))
async def revoke_key(key_id: str, herald: HeraldDep, _: AdminKey, request: Request) -> Response:
    async with herald.db.write() as conn:
        if not await revoke_api_key(conn, key_id):
            raise NotFound("API key")
    request.app.state.api_keys.clear()  # this process stops accepting it at once; others within seconds
    return Response(status_code=204)
