"""The API docs work offline, and the OpenAPI document says enough to generate a client from."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Harness

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)
CREATING_POSTS = {
    ("post", "/v1/notifications"),
    ("post", "/v1/announcements"),
    ("post", "/v1/users/{user_id}/tokens"),
    ("post", "/v1/users/{user_id}/wechat-subscriptions"),
    ("post", "/v1/me/messages"),
    ("post", "/v1/schedules"),
    ("post", "/v1/notifications/cancel"),  # creates nothing, but a retried cancel must answer as the first did
}


async def openapi(harness: Harness) -> dict[str, Any]:
    r = await harness.client.get("/openapi.json")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in doc["paths"].items() for method, op in item.items()]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_every_asset_from_this_server(harness: Harness, page: str) -> None:
    r = await harness.client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not EXTERNAL.search(html), f"{page} loads something from another host"
    assert "cdn." not in html and "fonts.googleapis" not in html
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, html
    for asset in assets:
        loaded = await harness.client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 1000, asset
    assert "/openapi.json" in html


async def test_swagger_ui_does_not_ask_an_online_validator(harness: Harness) -> None:
    html = (await harness.client.get("/docs")).text
    assert '"validatorUrl": null' in html


async def test_operations_have_stable_unique_ids(harness: Harness) -> None:
    doc = await openapi(harness)
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    assert {"trigger", "list_inbox", "put_user", "create_announcement"} <= set(ids)


async def test_each_operation_names_the_credential_it_takes(harness: Harness) -> None:
    doc = await openapi(harness)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["UserToken"] == {**schemes["UserToken"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    public = {"/healthz", "/readyz", "/metrics", "/v1/webpush/public-key"}
    for method, path, op in operations(doc):
        if path in public or path.startswith("/v1/callbacks/"):
            assert op["security"] == [], (method, path)
        elif path.startswith("/v1/me/"):
            assert op["security"] == [{"UserToken": []}], (method, path)
        else:
            assert op["security"] == [{"ApiKey": []}], (method, path)
            assert op["x-herald-scope"] in ("send", "read", "admin", "conversations:read"), (method, path)
    assert doc["paths"]["/v1/notifications"]["post"]["x-herald-scope"] == "send"
    assert doc["paths"]["/v1/channel-accounts"]["get"]["x-herald-scope"] == "admin"
    conversation = doc["paths"]["/v1/users/{user_id}/conversations/{peer}/messages"]["get"]
    assert conversation["x-herald-scope"] == "conversations:read"
    assert "`admin` alone is not enough" in conversation["description"]


async def test_every_operation_has_a_response_model(harness: Harness) -> None:
    doc = await openapi(harness)
    schemas = doc["components"]["schemas"]
    for method, path, op in operations(doc):
        successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert successes, (method, path)
        for code, response in successes.items():
            if code == "204":
                assert "content" not in response
                continue
            content = response["content"]
            if path == "/metrics":
                assert "text/plain" in content
                continue
            if path == "/v1/me/events":  # Server-Sent Events: each event is documented by a model
                assert list(content) == ["text/event-stream"]
                assert content["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/RealtimeEvent"}
                continue
            schema = content["application/json"]["schema"]
            ref = schema.get("$ref", "")
            assert ref.startswith("#/components/schemas/"), (method, path, code, schema)
            assert ref.rsplit("/", 1)[1] in schemas
    user = schemas["UserOut"]
    assert {"id", "tags", "data", "created_at"} <= set(user["required"])
    notification = doc["paths"]["/v1/notifications"]["post"]["responses"]["202"]
    assert notification["content"]["application/json"]["schema"]["$ref"].endswith("/AcceptedOut")
    put_type = doc["paths"]["/v1/notification-types/{key}"]["put"]["responses"]
    assert {"200", "201"} <= put_type.keys()  # updated, created


async def test_errors_are_documented_as_problem_json(harness: Harness) -> None:
    doc = await openapi(harness)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= problem["properties"].keys()
    for method, path, op in operations(doc):
        for code, response in op["responses"].items():
            if int(code) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (method, path, code)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }

    def codes(method: str, path: str) -> set[str]:
        return set(doc["paths"][path][method]["responses"])

    assert {"400", "401", "403", "409", "413", "415", "422", "503"} <= codes("post", "/v1/notifications")
    assert {"401", "403", "404", "422", "503"} <= codes("get", "/v1/users/{user_id}")
    assert {"401", "404", "503"} <= codes("get", "/v1/me/inbox/{item_id}")
    assert "403" not in codes("get", "/v1/me/inbox/{item_id}")  # user tokens have no scopes
    assert "401" not in codes("get", "/healthz")
    assert "503" in codes("get", "/readyz")
    assert "Retry-After" in doc["paths"]["/v1/notifications"]["post"]["responses"]["503"]["headers"]


async def test_creating_posts_take_an_idempotency_key(harness: Harness) -> None:
    doc = await openapi(harness)
    for method, path, op in operations(doc):
        headers = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        if (method, path) in CREATING_POSTS:
            assert len(headers) == 1, (method, path)
            assert headers[0]["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
            assert headers[0]["required"] is False
        else:
            assert not headers, (method, path)
