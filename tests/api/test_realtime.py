"""GET /v1/me/events (SSE) and /v1/me/ws (WebSocket) over a real server (uvicorn on loopback), on both
databases and both backplanes: authentication before the stream opens, only one's own events, replay
by Last-Event-ID / ?since=, heartbeats, token expiry, CORS, and a Redis outage survived mid-stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from herald.engine.tokens import mint_user_token
from tests.conftest import REDIS_URL, make_settings
from tests.realtime.support import Live, TcpProxy, live_server, sse

ORIGIN = "https://shop.example.com"


@pytest.fixture
async def live(database_url: str, backplane_url: str | None) -> AsyncIterator[Live]:
    settings = make_settings(database_url, redis_url=backplane_url, cors_origins=[ORIGIN])
    async with live_server(settings) as server:
        await server.put_inbox_type()
        yield server


def ws_url(live: Live, query: str) -> str:
    return live.base.replace("http://", "ws://") + "/v1/me/ws?" + query


async def ws_next(ws: ClientConnection, event: str | None = None, timeout: float = 5) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if event is None or frame["event"] == event:
            return frame  # type: ignore[no-any-return]


async def test_a_stream_opens_ready_with_counts_and_carries_new_items(live: Live) -> None:
    async with sse(live.client, "/v1/me/events", headers=live.user("alice")) as events:
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.response.headers["cache-control"] == "no-cache"
        ready = await events.next()
        assert ready.event == "ready" and ready.id and ready.id.startswith("evt_")
        assert ready.data["user_id"] == "alice" and ready.data["heartbeat_seconds"] == 15
        assert events.retry == 3000
        counts = await events.next()
        assert counts.event == "counts" and counts.data["total"] == 0

        await live.trigger("order.paid", ["alice", "bob"], order="o-1", amount="9.90")
        new = await events.until("inbox.new")
        inbox = (await live.client.get("/v1/me/inbox", headers=live.user("alice"))).json()
        assert new.data == inbox["items"][0] and new.data["title"] == "订单 o-1 已支付"
        assert (await events.until("counts")).data["total"] == 1


async def test_the_token_may_come_in_the_query_on_the_stream_paths_only(live: Live) -> None:
    token = live.token("alice")
    async with sse(live.client, f"/v1/me/events?token={token}") as events:
        assert (await events.next()).data["user_id"] == "alice"
    r = await live.client.get(f"/v1/me/inbox?token={token}")
    assert r.status_code == 401  # anywhere else a token in the URL would end up in access logs


@pytest.mark.parametrize(
    ("credential", "detail"),
    [
        (None, "a user token is required"),
        ("hk_not_a_user_token", "this is an API key"),
        ("garbage", "a user token is a JWT"),
        (mint_user_token("another-secret-entirely-0123456789abcdef", "alice", 3600)[0], "Signature verification"),
        (mint_user_token("test-secret-key-for-herald-tests-0123456789", "alice", -10)[0], "expired"),
    ],
    ids=["missing", "api-key", "garbage", "forged", "expired"],
)
async def test_a_bad_token_is_401_before_anything_streams(live: Live, credential: str | None, detail: str) -> None:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    r = await live.client.get("/v1/me/events", headers=headers)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(live, f"token={credential or ''}")):
            pass
    assert refused.value.response.status_code == 401
    assert detail in json.loads(refused.value.response.body or b"{}")["detail"]


async def test_a_user_never_receives_another_users_events(live: Live) -> None:
    async with (
        sse(live.client, "/v1/me/events", headers=live.user("alice")) as alice,
        sse(live.client, "/v1/me/events", headers=live.user("bob")) as bob,
    ):
        await alice.until("counts")
        await bob.until("counts")
        await live.trigger("order.paid", ["bob"], order="o-b", amount="1")
        bobs_item = (await bob.until("inbox.new")).data
        r = await live.client.post(f"/v1/me/inbox/{bobs_item['id']}/read", headers=live.user("alice"))
        assert r.status_code == 404
        assert await alice.quiet(1.0) == []
    # resuming "after bob's item" replays alice's own inbox, never bob's
    async with sse(live.client, f"/v1/me/events?since={bobs_item['id']}", headers=live.user("alice")) as alice:
        got = await alice.quiet(1.0)
        assert [e.event for e in got] == ["ready", "counts"]


async def test_last_event_id_replays_what_was_missed(live: Live) -> None:
    async with sse(live.client, "/v1/me/events", headers=live.user("alice")) as events:
        await events.until("counts")
        last_id = events.seen[-1].id
    await live.trigger("order.paid", ["alice"], order="o-1", amount="1")
    await live.trigger("order.paid", ["alice"], order="o-2", amount="2")
    headers = {**live.user("alice"), "Last-Event-ID": str(last_id)}
    async with sse(live.client, "/v1/me/events", headers=headers) as events:
        got = [await events.next() for _ in range(4)]
        assert [e.event for e in got] == ["ready", "inbox.new", "inbox.new", "counts"]
        assert [e.data["title"] for e in got[1:3]] == ["订单 o-1 已支付", "订单 o-2 已支付"]
        assert got[3].data["total"] == 2
    # the WebSocket resumes with ?since=
    async with connect(ws_url(live, f"token={live.token('alice')}&since={last_id}")) as ws:
        frames = [await ws_next(ws) for _ in range(4)]
        assert [f["event"] for f in frames] == ["ready", "inbox.new", "inbox.new", "counts"]
        assert frames[1]["id"].startswith("evt_") and frames[1]["data"]["title"] == "订单 o-1 已支付"


async def test_a_resume_point_that_is_not_an_id(live: Live) -> None:
    r = await live.client.get("/v1/me/events?since=yesterday", headers=live.user("alice"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
    headers = {**live.user("alice"), "Last-Event-ID": "not-ours"}  # what a browser sends back: never refused
    async with sse(live.client, "/v1/me/events", headers=headers) as events:
        assert [(await events.next()).event for _ in range(3)] == ["ready", "sync.required", "counts"]


async def test_the_websocket_carries_the_same_events(live: Live) -> None:
    async with connect(ws_url(live, f"token={live.token('alice')}")) as ws:
        assert (await ws_next(ws))["event"] == "ready"
        assert (await ws_next(ws))["event"] == "counts"
        await live.trigger("order.paid", ["alice"], order="o-ws", amount="1")
        item = (await ws_next(ws, "inbox.new"))["data"]
        assert item["title"] == "订单 o-ws 已支付"
        await live.client.post(f"/v1/me/inbox/{item['id']}/read", headers=live.user("alice"))
        updated = (await ws_next(ws, "inbox.updated"))["data"]
        assert updated["id"] == item["id"] and updated["read"] is True


async def test_a_stream_whose_token_expires_is_told_and_closed(live: Live) -> None:
    token, _ = mint_user_token("test-secret-key-for-herald-tests-0123456789", "alice", 2)
    async with sse(live.client, f"/v1/me/events?token={token}") as events:
        expired = await events.until("token.expired", timeout=6)
        assert expired.data["expired_at"]
        with pytest.raises(EOFError):
            await events.next()
    token, _ = mint_user_token("test-secret-key-for-herald-tests-0123456789", "alice", 2)
    async with connect(ws_url(live, f"token={token}")) as ws:
        await ws_next(ws, "token.expired", timeout=6)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_a_websocket_takes_a_fresh_token_of_its_own_user_only(live: Live) -> None:
    short, _ = mint_user_token("test-secret-key-for-herald-tests-0123456789", "alice", 2)
    async with connect(ws_url(live, f"token={short}")) as ws:
        await ws_next(ws, "counts")
        await ws.send(json.dumps({"type": "token", "token": live.token("alice")}))
        await asyncio.sleep(3)  # past the first token's expiry: still open
        await live.trigger("order.paid", ["alice"], order="o", amount="1")
        assert (await ws_next(ws, "inbox.new"))["data"]["title"] == "订单 o 已支付"
        await ws.send(json.dumps({"type": "token", "token": live.token("mallory")}))
        await ws_next(ws, "token.expired")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_heartbeats_carry_an_id(database_url: str) -> None:
    async with live_server(make_settings(database_url, realtime_heartbeat_seconds=1)) as server:
        async with sse(server.client, "/v1/me/events", headers=server.user("alice")) as events:
            beat = await events.until("heartbeat", timeout=4)
            assert beat.id and beat.id.startswith("evt_") and beat.data == {}


async def test_a_user_may_hold_only_so_many_streams(database_url: str) -> None:
    async with live_server(make_settings(database_url, realtime_max_streams_per_user=1)) as server:
        async with sse(server.client, "/v1/me/events", headers=server.user("alice")) as events:
            await events.until("counts")
            r = await server.client.get("/v1/me/events", headers=server.user("alice"))
            assert r.status_code == 429 and "realtime streams open" in r.json()["detail"]
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(server, f"token={server.token('alice')}")):
                    pass
            assert refused.value.response.status_code == 429
            async with sse(server.client, "/v1/me/events", headers=server.user("bob")) as other:
                assert (await other.next()).event == "ready"  # another user is not affected


async def test_cors_lets_the_listed_origin_in_without_credentials(live: Live) -> None:
    preflight = await live.client.options(
        "/v1/me/inbox/seen",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    token = live.token("alice")
    async with sse(live.client, f"/v1/me/events?token={token}", headers={"Origin": ORIGIN}) as events:
        assert events.response.headers["access-control-allow-origin"] == ORIGIN
        assert (await events.next()).event == "ready"
    r = await live.client.get("/v1/me/inbox/counts", headers={**live.user("alice"), "Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    refused = await live.client.get("/v1/me/inbox/counts", headers={"Origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN  # errors too


@pytest.mark.skipif(REDIS_URL is None, reason="needs HERALD_TEST_REDIS_URL (required under CI=true)")
async def test_a_redis_outage_mid_stream_is_survived_and_the_gap_replayed(database_url: str) -> None:
    assert REDIS_URL is not None
    proxy = TcpProxy(REDIS_URL)
    await proxy.start()
    settings = make_settings(database_url, redis_url=proxy.url, realtime_heartbeat_seconds=1)
    try:
        async with live_server(settings) as server:
            await server.put_inbox_type()
            async with sse(server.client, "/v1/me/events", headers=server.user("alice")) as events:
                await events.until("counts")
                await proxy.cut()
                # the API stays up, the stream stays open (heartbeats, without ids while unsubscribed)
                assert (await server.client.get("/healthz")).status_code == 200
                beat = await events.until("heartbeat", timeout=4)
                await server.trigger("order.paid", ["alice"], order="o-outage", amount="1")  # written; its word lost
                for _ in range(20):
                    beat = await events.until("heartbeat", timeout=4)
                    if beat.id is None:
                        break
                assert beat.id is None
                await proxy.restore()
                new = await events.until("inbox.new", timeout=20)  # replayed from the store
                assert new.data["title"] == "订单 o-outage 已支付"
                assert (await events.until("counts")).data["total"] == 1
            r = await server.client.get("/v1/me/inbox/counts", headers=server.user("alice"))
            assert r.status_code == 200
    finally:
        await proxy.cut()


async def test_a_closed_client_leaves_no_stream_behind(live: Live) -> None:
    hub = live.herald.realtime.hub
    async with sse(live.client, "/v1/me/events", headers=live.user("alice")) as events:
        await events.until("counts")
        assert "alice" in hub.users()
    for _ in range(100):
        if "alice" not in hub.users():
            break
        await asyncio.sleep(0.05)
    assert "alice" not in hub.users()


async def test_the_stream_endpoint_is_in_the_openapi_document(live: Live) -> None:
    doc = (await live.client.get("/openapi.json")).json()
    operation = doc["paths"]["/v1/me/events"]["get"]
    assert operation["security"] == [{"UserToken": []}]
    assert {p["name"] for p in operation["parameters"]} == {"token", "since", "Last-Event-ID"}
    assert {"200", "401", "422", "429", "503"} <= set(operation["responses"])
    assert "/v1/me/inbox/seen" in doc["paths"]
