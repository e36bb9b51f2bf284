"""HERALD_ALLOW_PRIVATE_URLS is read once, by the settings, and the API (subscribing a push endpoint)
and the worker (sending to it) honour the same value, however it is spelled (issue 7, item 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select

from herald.app import create_app
from herald.config import Settings
from herald.store.apikeys import create_api_key
from herald.store.endpoints import save_endpoint
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.channels import test_webpush as webpush_tests
from tests.conftest import SECRET, Harness
from tests.support import free_port, serve_asgi

BROWSER = "browser-1"


@asynccontextmanager
async def herald_from_environment(database_url: str) -> AsyncIterator[Harness]:
    """An app whose settings come from the environment, as `herald serve` reads them."""
    settings = Settings(database_url=database_url, secret_key=SECRET, auto_migrate=False)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        async with app.state.herald.db.write() as conn:
            keys = [(await create_api_key(conn, name, [name]))[1] for name in ("admin", "send", "read")]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield Harness(app.state.herald, client, *keys)


@pytest.fixture
def push_service() -> Iterator[webpush_tests.PushService]:
    service = webpush_tests.PushService()
    with serve_asgi(service, free_port()) as base:
        service.origin = base
        service.browsers[BROWSER] = webpush_tests.Browser()
        yield service


async def push_once(h: Harness) -> dict[str, object]:
    r = await h.client.put(
        "/v1/channel-accounts/push",
        json={"channel": "webpush", "config": {"vapid_subject": "mailto:ops@example.com"}},
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    await h.put_type("otp", ["webpush"], {"webpush": {"title": "验证码 ${code}"}})
    r = await h.trigger({"type": "otp", "to": ["u1"], "data": {"code": "1"}})
    assert r.status_code == 202, r.text
    await h.drain()
    async with h.herald.db.read() as conn:
        return dict((await conn.execute(select(deliveries))).mappings().one())


@pytest.mark.parametrize("value", ["1", "true", "yes", "True", "on"])
async def test_every_spelling_of_yes_is_honoured_by_api_and_worker(
    database_url: str, monkeypatch: pytest.MonkeyPatch, push_service: webpush_tests.PushService, value: str
) -> None:
    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_URLS", value)
    async with herald_from_environment(database_url) as h:
        subscription = push_service.browsers[BROWSER].subscription(f"{push_service.origin}/push/{BROWSER}")
        r = await h.client.post("/v1/me/webpush-subscriptions", json=subscription, headers=h.user("u1"))
        assert r.status_code == 201, r.text  # the API: an http:// loopback endpoint is fine
        delivery = await push_once(h)
        assert delivery["status"] == "sent", delivery  # the worker: the same
        assert len(push_service.requests) == 1


@pytest.mark.parametrize("value", ["0", "false", "no", None])
async def test_otherwise_both_refuse_a_loopback_endpoint(
    database_url: str, monkeypatch: pytest.MonkeyPatch, push_service: webpush_tests.PushService, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("HERALD_ALLOW_PRIVATE_URLS", raising=False)
    else:
        monkeypatch.setenv("HERALD_ALLOW_PRIVATE_URLS", value)
    async with herald_from_environment(database_url) as h:
        endpoint = f"{push_service.origin}/push/{BROWSER}"
        subscription = push_service.browsers[BROWSER].subscription(endpoint)
        r = await h.client.post("/v1/me/webpush-subscriptions", json=subscription, headers=h.user("u1"))
        assert r.status_code == 422, r.text
        # one stored while private URLs were allowed is refused at send time all the same
        async with h.herald.db.write() as conn:
            await save_endpoint(conn, "webpush", "u1", endpoint, subscription["keys"], utcnow())
        delivery = await push_once(h)
        assert delivery["status"] == "failed" and "endpoint refused" in str(delivery["last_error"]), delivery
        assert push_service.requests == []
