"""Responses kept for Idempotency-Key replays are encrypted at rest: a user token minted with a key
never sits in the idempotency table in the clear, and replays still return the first response."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from herald.store.tables import idempotency_keys
from tests.conftest import Harness


async def stored_bodies(h: Harness) -> list[bytes]:
    async with h.herald.db.read() as conn:
        return [bytes(b) for b in (await conn.execute(select(idempotency_keys.c.response_body))).scalars()]


async def mint(h: Harness, key: str) -> tuple[int, bytes, dict[str, str]]:
    r = await h.client.post(
        "/v1/users/u1/tokens", json={"expires_in": 600}, headers={**h.sender(), "Idempotency-Key": key}
    )
    return r.status_code, r.content, dict(r.headers)


async def test_a_minted_token_is_not_stored_in_the_clear(harness: Harness) -> None:
    status, body, _ = await mint(harness, "mint-1")
    assert status == 201
    token = json.loads(body)["token"]
    (stored,) = await stored_bodies(harness)
    assert token.encode() not in stored and b"expires_at" not in stored
    # the replay is the first response, byte for byte
    again, replayed, headers = await mint(harness, "mint-1")
    assert (again, replayed, headers.get("idempotent-replayed")) == (201, body, "true")


async def test_a_clear_row_from_an_older_herald_still_replays(harness: Harness) -> None:
    status, body, _ = await mint(harness, "old")
    assert status == 201
    async with harness.herald.db.write() as conn:
        await conn.execute(update(idempotency_keys).values(response_body=body))
    again, replayed, headers = await mint(harness, "old")
    assert (again, replayed, headers.get("idempotent-replayed")) == (201, body, "true")


async def test_a_row_sealed_with_another_key_is_409_not_a_500(harness: Harness) -> None:
    assert (await mint(harness, "rotated"))[0] == 201
    async with harness.herald.db.write() as conn:
        await conn.execute(update(idempotency_keys).values(response_body=b"gAAAAABnot-a-valid-fernet-token"))
    status, body, _ = await mint(harness, "rotated")
    assert status == 409 and b"HERALD_SECRET_KEY" in body
