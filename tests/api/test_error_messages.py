"""Error messages a person understands: the wrong kind of credential, a body not sent as JSON."""

from __future__ import annotations

import pytest

from tests.api.test_auth import assert_problem, bearer
from tests.conftest import Harness


async def test_an_api_key_on_me_says_it_is_an_api_key(harness: Harness) -> None:
    r = await harness.client.get("/v1/me/inbox", headers=harness.admin())
    body = assert_problem(r, 401)
    assert "this is an API key; /v1/me needs a user token" in body["detail"]
    assert "segments" not in body["detail"].lower()
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_user_token_on_a_server_path_says_it_is_a_user_token(harness: Harness) -> None:
    token = harness.user("alice")["Authorization"]
    r = await harness.client.post(
        "/v1/notifications", json={"type": "x", "to": ["a"]}, headers={"Authorization": token}
    )
    body = assert_problem(r, 401)
    assert "this is a user token" in body["detail"]
    assert "API key" in body["detail"]
    r = await harness.client.get("/v1/users/alice", headers={"Authorization": token})
    assert "this is a user token" in assert_problem(r, 401)["detail"]


@pytest.mark.parametrize("token", ["garbage", "a.b", "hk"])
async def test_a_token_that_is_not_a_jwt_says_what_a_user_token_is(harness: Harness, token: str) -> None:
    body = assert_problem(await harness.client.get("/v1/me/inbox", headers=bearer(token)), 401)
    assert "JWT" in body["detail"]
    assert "segments" not in body["detail"].lower()


async def test_no_credentials_name_what_is_needed(harness: Harness) -> None:
    assert "API key" in assert_problem(await harness.client.get("/v1/users/alice"), 401)["detail"]
    assert "user token" in assert_problem(await harness.client.get("/v1/me/inbox"), 401)["detail"]
