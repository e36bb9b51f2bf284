"""A channel's own routes: declared in the channel file, mounted by the app with their auth.

A test-only channel is registered in the registry before the app is built, as a new channel file
would be; its routes must come up with the auth they declare and reach only what ChannelRequest gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from herald.api.channel_routes import channel_router
from herald.app import create_app
from herald.channels import CHANNELS
from herald.channels.base import (
    Channel,
    ChannelRequest,
    ChannelRoute,
    ChannelSettings,
    OutboundMessage,
    SendResult,
)
from herald.core.errors import NotFound
from herald.engine.channel_context import ChannelContext
from herald.engine.service import Herald
from herald.store.apikeys import create_api_key
from tests.conftest import Harness, make_settings

NAME = "routed"


class RoutedSettings(ChannelSettings):
    label: str
    token: SecretStr


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100)


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str = Field(min_length=1, max_length=50)
    count: int = Field(ge=1, le=10)


async def hello(request: ChannelRequest) -> dict[str, Any]:
    """Public: the channel's accounts as routes see them."""
    accounts = await request.accounts()
    return {"accounts": [{"name": a.name, "default": a.default, "config": a.config} for a in accounts]}


async def add_note(request: ChannelRequest) -> dict[str, Any]:
    body = request.body_as(NoteIn)
    await request.endpoints.save(body.text, {"len": len(body.text)})
    return {"user_id": request.user_id, "text": body.text}


async def my_notes(request: ChannelRequest) -> dict[str, Any]:
    return {"user_id": request.user_id, "items": [e.address for e in await request.endpoints.registered()]}


async def delete_note(request: ChannelRequest) -> None:
    if not await request.endpoints.delete(request.body_as(NoteIn).text):
        raise NotFound("note")


async def grant(request: ChannelRequest) -> dict[str, Any]:
    body = request.body_as(GrantIn)
    left = await request.grants.grant(f"{NAME}:{body.item}", body.count)
    return {"user_id": request.user_id, "remaining": left}


async def remaining(request: ChannelRequest) -> dict[str, Any]:
    return {"remaining": await request.grants.remaining(f"{NAME}:{request.path_params['item']}")}


class RoutedChannel(Channel):
    name = NAME
    Settings = RoutedSettings
    requires_template = False

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        return SendResult()

    def routes(self) -> Sequence[ChannelRoute]:
        return (
            ChannelRoute("GET", "/v1/routed/hello", hello, auth="public", summary="Hello"),
            ChannelRoute("POST", "/v1/me/routed-notes", add_note, auth="user", body=NoteIn, status_code=201),
            ChannelRoute("GET", "/v1/me/routed-notes", my_notes, auth="user"),
            ChannelRoute("DELETE", "/v1/me/routed-notes", delete_note, auth="user", body=NoteIn, status_code=204),
            ChannelRoute(
                "POST",
                "/v1/users/{user_id}/routed-grants",
                grant,
                auth="send",
                body=GrantIn,
                status_code=201,
                idempotent=True,
            ),
            ChannelRoute("GET", "/v1/users/{user_id}/routed-grants/{item}", remaining, auth="read"),
        )


@pytest.fixture
async def routed(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    """An app built after the test channel joined the registry (as a new file in channels/ would)."""
    monkeypatch.setitem(CHANNELS, NAME, RoutedChannel)
    app = create_app(make_settings(database_url), run_worker=False)
    herald: Herald = app.state.herald
    async with app.router.lifespan_context(app):
        async with herald.db.write() as conn:
            _, admin = await create_api_key(conn, "admin", ["admin"])
            _, send = await create_api_key(conn, "sender", ["send"])
            _, read = await create_api_key(conn, "reader", ["read"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield Harness(herald, client, admin, send, read)


async def test_a_public_route_needs_nothing_and_sees_no_secret(routed: Harness) -> None:
    r = await routed.client.put(
        "/v1/channel-accounts/one",
        json={"channel": NAME, "config": {"label": "L", "token": "s3cret"}, "default": True},
        headers=routed.admin(),
    )
    assert r.status_code == 200, r.text
    r = await routed.client.get("/v1/routed/hello")
    assert r.status_code == 200, r.text
    assert r.json() == {"accounts": [{"name": "one", "default": True, "config": {"label": "L"}}]}
    assert "s3cret" not in r.text


async def test_a_user_route_reaches_the_callers_data_only(routed: Harness) -> None:
    c = routed.client
    r = await c.post("/v1/me/routed-notes", json={"text": "alice's"}, headers=routed.user("alice"))
    assert r.status_code == 201 and r.json() == {"user_id": "alice", "text": "alice's"}
    assert (await c.get("/v1/me/routed-notes", headers=routed.user("alice"))).json()["items"] == ["alice's"]
    assert (await c.get("/v1/me/routed-notes", headers=routed.user("bob"))).json() == {"user_id": "bob", "items": []}
    # bob cannot remove alice's note: the route only ever gets bob's id
    r = await c.request("DELETE", "/v1/me/routed-notes", json={"text": "alice's"}, headers=routed.user("bob"))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await c.request("DELETE", "/v1/me/routed-notes", json={"text": "alice's"}, headers=routed.user("alice"))
    assert r.status_code == 204 and r.content == b""
    assert (await c.get("/v1/me/routed-notes", headers=routed.user("alice"))).json()["items"] == []


async def test_a_user_route_refuses_keys_and_no_token(routed: Harness) -> None:
    for headers in ({}, routed.admin(), {"Authorization": "Bearer not-a-token"}):
        r = await routed.client.get("/v1/me/routed-notes", headers=headers)
        assert r.status_code == 401, (headers, r.text)


async def test_a_send_route_refuses_a_read_key_and_users(routed: Harness) -> None:
    body = {"item": "a", "count": 2}
    for headers, status in ((routed.reader(), 403), ({}, 401), (routed.user("u1"), 401)):
        r = await routed.client.post("/v1/users/u1/routed-grants", json=body, headers=headers)
        assert r.status_code == status, (headers, r.text)
    r = await routed.client.post("/v1/users/u1/routed-grants", json=body, headers=routed.sender())
    assert r.status_code == 201 and r.json() == {"user_id": "u1", "remaining": 2}
    r = await routed.client.get("/v1/users/u1/routed-grants/a", headers=routed.reader())
    assert r.status_code == 200 and r.json() == {"remaining": 2}
    r = await routed.client.get("/v1/users/u2/routed-grants/a", headers=routed.reader())
    assert r.json() == {"remaining": 0}
    assert (await routed.client.get("/v1/users/u1", headers=routed.reader())).status_code == 200  # granting made u1


async def test_an_idempotent_route_replays_its_first_answer(routed: Harness) -> None:
    headers = {**routed.sender(), "Idempotency-Key": "grant-1"}
    first = await routed.client.post("/v1/users/u1/routed-grants", json={"item": "a", "count": 3}, headers=headers)
    again = await routed.client.post("/v1/users/u1/routed-grants", json={"item": "a", "count": 3}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() == {"user_id": "u1", "remaining": 3}
    assert again.headers["idempotent-replayed"] == "true"
    other = await routed.client.post("/v1/users/u1/routed-grants", json={"item": "a", "count": 1}, headers=headers)
    assert other.status_code == 409


async def test_bad_bodies_and_nul_characters_are_422_naming_the_field(routed: Harness) -> None:
    c, alice = routed.client, routed.user("alice")
    r = await c.post("/v1/me/routed-notes", json={"text": ""}, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "text"
    r = await c.post("/v1/me/routed-notes", json={"text": "a\x00b"}, headers=alice)
    assert r.status_code == 422 and r.json()["errors"] == [{"field": "text", "message": "contains a NUL character"}]
    r = await c.get("/v1/users/u%001/routed-grants/a", headers=routed.reader())
    assert r.status_code == 422
    r = await c.post("/v1/me/routed-notes", content=b"x" * (1024 * 1024 + 1), headers=alice)
    assert r.status_code == 413


async def test_routes_are_in_the_openapi_document_with_their_body(routed: Harness) -> None:
    spec = (await routed.client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/me/routed-notes"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NoteIn"}
    assert "201" in post["responses"]
    assert {"/v1/routed/hello", "/v1/users/{user_id}/routed-grants/{item}"} <= set(spec["paths"])
    # the real channels' routes too
    channels = {"/v1/webpush/public-key", "/v1/me/webpush-subscriptions", "/v1/users/{user_id}/wechat-subscriptions"}
    assert channels <= set(spec["paths"])


async def test_grants_stay_in_the_channels_namespace(harness: Harness) -> None:
    async with ChannelContext(harness.herald, RoutedChannel(), user_id="u1") as request:
        with pytest.raises(ValueError, match="routed:"):
            await request.grants.grant("wechat_mp:TPL", 1)
        with pytest.raises(ValueError):
            await request.grants.remaining(f"{NAME}:")
        with pytest.raises(RuntimeError):
            ChannelContext(harness.herald, RoutedChannel()).user_id  # noqa: B018 - a public route has no user


def _declaring(*routes: ChannelRoute) -> Channel:
    class Declaring(RoutedChannel):
        def routes(self) -> Sequence[ChannelRoute]:
            return routes

    return Declaring()


@pytest.mark.parametrize(
    "route",
    [
        ChannelRoute("GET", "/v1/me/{user_id}/notes", my_notes, auth="user"),  # a user route naming a user
        ChannelRoute("GET", "/v1/routed/notes", my_notes, auth="user"),  # a user route outside /v1/me/
        ChannelRoute("GET", "/v1/me/notes", my_notes, auth="read"),  # /v1/me/ with a key
        ChannelRoute("POST", "/v1/routed/hello", hello, auth="public", idempotent=True),  # no caller to scope
        ChannelRoute("GET", "/v1/routed/{body}", hello, auth="public"),  # a reserved parameter
        ChannelRoute("GET", "/routed", hello, auth="public"),  # outside /v1/
        ChannelRoute("GET", "/v1/routed", hello, auth="public", body=NoteIn),  # a GET with a body
    ],
)
def test_a_route_that_could_break_an_api_rule_is_refused_at_creation(route: ChannelRoute) -> None:
    with pytest.raises(ValueError, match=f"channel {NAME}"):
        channel_router({NAME: _declaring(route)})


def test_two_channels_cannot_declare_the_same_route() -> None:
    route = ChannelRoute("GET", "/v1/routed/{x}", hello, auth="public")
    same = ChannelRoute("GET", "/v1/routed/{y}", hello, auth="public")
    with pytest.raises(ValueError, match="already"):
        channel_router({"a": _declaring(route), NAME: _declaring(same)})
