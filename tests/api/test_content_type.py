"""A JSON body sent without ``Content-Type: application/json`` is 415, naming the header."""

from __future__ import annotations

import json

import pytest

from tests.api.test_auth import assert_problem
from tests.conftest import Harness

TRIGGER = json.dumps({"type": "t", "to": ["alice"]}).encode()


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
async def test_a_body_of_another_type_is_415_naming_content_type(harness: Harness, content_type: str) -> None:
    r = await harness.client.post(
        "/v1/notifications", content=TRIGGER, headers={**harness.sender(), "Content-Type": content_type}
    )
    body = assert_problem(r, 415)
    assert "Content-Type: application/json" in body["detail"]
    assert content_type in body["detail"]
    assert body["errors"] == [{"field": "Content-Type", "message": "must be application/json"}]


async def test_a_body_without_content_type_is_415_naming_content_type(harness: Harness) -> None:
    r = await harness.client.put("/v1/users/alice", content=b'{"name": "Alice"}', headers=harness.sender())
    assert "content-type" not in r.request.headers
    body = assert_problem(r, 415)
    assert "no Content-Type header" in body["detail"]
    assert "application/json" in body["detail"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"])
async def test_json_bodies_pass(harness: Harness, content_type: str) -> None:
    r = await harness.client.put(
        "/v1/users/alice", content=b'{"name": "Alice"}', headers={**harness.sender(), "Content-Type": content_type}
    )
    assert r.status_code == 200, r.text


async def test_requests_without_a_body_need_no_content_type(harness: Harness) -> None:
    r = await harness.client.post("/v1/users/alice/tokens", headers=harness.sender())
    assert r.status_code == 201, r.text
    r = await harness.client.delete("/v1/users/nobody", headers=harness.admin())
    assert r.status_code == 404


async def test_the_connection_stays_usable_after_a_415(harness: Harness) -> None:
    for _ in range(3):
        r = await harness.client.post(
            "/v1/notifications", content=TRIGGER, headers={**harness.sender(), "Content-Type": "text/plain"}
        )
        assert r.status_code == 415
    r = await harness.client.put("/v1/users/alice", json={"name": "Alice"}, headers=harness.sender())
    assert r.status_code == 200


async def test_provider_callbacks_keep_their_own_formats(harness: Harness) -> None:
    # delivery reports come as the provider sends them: not refused for their Content-Type
    r = await harness.client.post(
        "/v1/callbacks/sms_aliyun/nope?token=t",
        content=b"a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code != 415


async def test_an_oversized_body_is_413_whatever_its_type(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/notifications",
        content=b"x" * (1024 * 1024 + 1),
        headers={**harness.sender(), "Content-Type": "text/plain"},
    )
    assert r.status_code == 413
