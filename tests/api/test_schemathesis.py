"""Schemathesis over every operation of the OpenAPI document, against the app in this process.

Each operation gets a bounded number of generated requests (``HERALD_SCHEMATHESIS_EXAMPLES``, 25 by
default, derandomized so CI runs the same requests every time), sent with an admin API key or a user
token as the operation's security says, half of them aimed at resources that exist (seeded below),
and every answer must pass schemathesis' response checks: no 5xx, a documented status code, a
documented content type, a body and headers that match the documented schema.

It runs on SQLite: the API's answers are the same on PostgreSQL (the conformance suite checks that),
and one backend keeps it to about a minute.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from herald.app import create_app
from herald.engine.tokens import mint_user_token
from herald.store.apikeys import create_api_key
from tests.conftest import SECRET, make_settings

MAX_EXAMPLES = int(os.environ.get("HERALD_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
BASE_URL = "http://herald.test"
T = TypeVar("T")

# The document is the same whatever the database: built once, at collection, without one.
_DOC_APP = create_app(make_settings("sqlite+aiosqlite:///:memory:"), run_worker=False)
SCHEMA = schemathesis.openapi.from_dict(_DOC_APP.openapi())
# The Server-Sent Events stream never ends by itself (it is a stream: ready, counts, then heartbeats until the
# token expires), so a request to it never gets the whole answer schemathesis checks. Its 401/422/429 answers
# and its events are tested in tests/api/test_realtime.py against a real server.
STREAMING = {"GET /v1/me/events"}
OPERATIONS = {
    op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations()) if op.label not in STREAMING
}


class LiveApp:
    """The app, its lifespan entered, on an event loop of its own thread: hypothesis drives it synchronously."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="schemathesis-app", daemon=True)
        self.thread.start()
        self.app = create_app(make_settings(database_url), run_worker=False)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self.lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False), base_url=BASE_URL
        )
        self.known: dict[str, str] = {}
        self.admin_key = ""
        self.user_token = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        body: dict[str, Any] = {}
        if "json" in kwargs:
            body["json"] = kwargs["json"]
        elif kwargs.get("data") is not None:
            body["content"] = kwargs["data"]
        assert not kwargs.get("cookies"), "Herald's API takes no cookies"
        return self.run(
            self.client.request(
                kwargs["method"], kwargs["url"], headers=kwargs.get("headers"), params=kwargs.get("params"), **body
            )
        )

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _seed(live: LiveApp) -> None:
    """Keys, a user with an inbox item, a type with a template, a notification, an announcement, an
    account and an event webhook: what the generated requests may aim at by name."""
    herald = live.app.state.herald
    async with herald.db.write() as conn:
        _, live.admin_key = await create_api_key(conn, "admin", ["admin"])
        spare, _ = await create_api_key(conn, "spare", ["read"])
    live.user_token, _ = mint_user_token(SECRET, "alice", 3600)
    admin = {"Authorization": f"Bearer {live.admin_key}"}
    c = live.client

    async def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}

    await ok(await c.put("/v1/users/alice", json={"name": "Alice", "tags": ["vip"]}, headers=admin))
    await ok(await c.put("/v1/notification-types/demo.type", json={"channels": ["inapp"]}, headers=admin))
    await ok(
        await c.put(
            "/v1/notification-types/demo.type/templates/inapp",
            json={"title": "Hi ${name}", "body": "Body"},
            headers=admin,
        )
    )
    sent = await ok(
        await c.post(
            "/v1/notifications", json={"type": "demo.type", "to": ["alice"], "data": {"name": "A"}}, headers=admin
        )
    )
    announcement = await ok(
        await c.post("/v1/announcements", json={"title": "Notice", "audience": {"all": True}}, headers=admin)
    )
    await ok(
        await c.put(
            "/v1/channel-accounts/hook",
            json={"channel": "webhook", "config": {"url": "http://127.0.0.1:9/h", "secret": "s"}},
            headers=admin,
        )
    )
    await ok(
        await c.put(
            "/v1/event-webhooks/hook",
            json={"url": "http://127.0.0.1:9/e", "secret": "s", "events": ["message.sent"]},
            headers=admin,
        )
    )
    inbox = await ok(await c.get("/v1/me/inbox", headers={"Authorization": f"Bearer {live.user_token}"}))
    live.known = {
        "user_id": "alice",
        "key": "demo.type",
        "channel": "inapp",
        "notification_id": sent["id"],
        "announcement_id": announcement["id"],
        "name": "hook",
        "account": "hook",
        "item_id": inbox["items"][0]["id"],
        "key_id": spare.id,
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[LiveApp]:
    path = tmp_path_factory.mktemp("schemathesis") / "herald.db"
    shutil.copy(sqlite_template, path)
    app = LiveApp(f"sqlite+aiosqlite:///{path}")
    try:
        app.run(_seed(app))
        yield app
    finally:
        app.close()


def test_every_operation_is_covered() -> None:
    assert len(OPERATIONS) >= 45, sorted(OPERATIONS)


def _takes_input(label: str) -> bool:
    operation = OPERATIONS[label]
    return bool(list(operation.iter_parameters())) or bool(list(operation.body))


# Requests that break the schema need something to break: operations without parameters or body get valid ones only.
CASES = [(label, GenerationMode.POSITIVE) for label in sorted(OPERATIONS)] + [
    (label, GenerationMode.NEGATIVE) for label in sorted(OPERATIONS) if _takes_input(label)
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} ({mode.value})" for label, mode in CASES])
def test_operation_conforms_to_its_schema(label: str, mode: GenerationMode, live: LiveApp) -> None:
    """Valid requests, and requests that break the schema: never a 5xx, always a documented answer."""
    operation = OPERATIONS[label]
    path_names = {p.name for p in operation.path_parameters}
    known = {name: value for name, value in live.known.items() if name in path_names}
    strategy = operation.as_strategy(mode)
    if known and mode is GenerationMode.POSITIVE:
        strategy = st.one_of(strategy, operation.as_strategy(mode, path_parameters=known))
    credential = live.user_token if operation.path.startswith("/v1/me/") else live.admin_key

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def conforms(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {credential}"}
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
        response = live.send(kwargs)
        case.validate_response(response, checks=CHECKS, headers=kwargs["headers"], transport_kwargs=kwargs)

    conforms()
