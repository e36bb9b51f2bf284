"""Who may call what: user tokens reach only /v1/me of their own user, API keys only what their scopes allow."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from herald.app import create_app
from herald.cli import app as cli_app
from herald.engine.tokens import verify_user_token
from herald.store.apikeys import create_api_key, find_api_key, revoke_api_key
from tests.conftest import SECRET, Harness, make_settings

PROBLEM = "application/problem+json"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], secret: str | None) -> str:
    """A JWT assembled by hand, so the header can say anything; signed HMAC-SHA256 when a secret is given."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims_for(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"sub": user_id, "iat": int(time.time()), "exp": int(time.time()) + 3600, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def give_alice_an_item(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "5.00"}})
    assert r.status_code == 202, r.text


# -- user tokens ------------------------------------------------------------------------------


async def test_a_valid_token_reaches_its_own_inbox(harness: Harness, inbox_type: str) -> None:
    await give_alice_an_item(harness, inbox_type)
    token = jwt.encode(claims_for("alice"), SECRET, algorithm="HS256")
    r = await harness.client.get("/v1/me/inbox", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 1


BAD_TOKENS = {
    "forged": lambda: jwt.encode(claims_for("alice"), "another-secret-entirely-0123456789abcdef", algorithm="HS256"),
    "alg_none": lambda: hand_made_token({"alg": "none", "typ": "JWT"}, claims_for("alice"), None),
    "alg_none_signed": lambda: hand_made_token({"alg": "none", "typ": "JWT"}, claims_for("alice"), SECRET),
    "expired": lambda: jwt.encode(
        {"sub": "alice", "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, SECRET, algorithm="HS256"
    ),
    "no_sub": lambda: jwt.encode({"exp": int(time.time()) + 3600}, SECRET, algorithm="HS256"),
    "no_exp": lambda: jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
    "empty_sub": lambda: jwt.encode({"sub": "", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256"),
    "hs512_same_secret": lambda: jwt.encode(claims_for("alice"), SECRET, algorithm="HS512"),
    "rs256_header_hmac_signed": lambda: hand_made_token({"alg": "RS256", "typ": "JWT"}, claims_for("alice"), SECRET),
    "tampered_sub": lambda: _swap_payload(
        jwt.encode(claims_for("bob"), SECRET, algorithm="HS256"), claims_for("alice")
    ),
    "garbage": lambda: "not.a.jwt",
    "api_key_shaped": lambda: "hk_" + "x" * 40,
}


def _swap_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_a_bad_user_token_is_401_and_reveals_nothing(harness: Harness, inbox_type: str, kind: str) -> None:
    await give_alice_an_item(harness, inbox_type)
    token = BAD_TOKENS[kind]()
    for path in ("/v1/me/inbox", "/v1/me/inbox/counts", "/v1/me/banners"):
        r = await harness.client.get(path, headers=bearer(token))
        body = assert_problem(r, 401)
        assert "items" not in body and "total" not in body
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    r = await harness.client.post("/v1/me/inbox/read-all", headers=bearer(token))
    assert_problem(r, 401)
    # nothing happened to alice's item
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts["total"] == 1


async def test_token_in_query_string_is_not_accepted_on_plain_endpoints(harness: Harness, inbox_type: str) -> None:
    """``?token=`` is for EventSource/WebSocket URLs only: elsewhere it would leak into access logs."""
    await give_alice_an_item(harness, inbox_type)
    good = jwt.encode(claims_for("alice"), SECRET, algorithm="HS256")
    assert_problem(await harness.client.get("/v1/me/inbox", params={"token": good}), 401)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Token abc"])
async def test_no_usable_token_is_401(harness: Harness, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    assert_problem(await harness.client.get("/v1/me/inbox", headers=headers), 401)
    assert_problem(await harness.client.get("/v1/notification-types", headers=headers), 401)


async def test_an_api_key_is_not_a_user_token(harness: Harness, inbox_type: str) -> None:
    await give_alice_an_item(harness, inbox_type)
    for key in (harness.admin_key, harness.send_key, harness.read_key):
        assert_problem(await harness.client.get("/v1/me/inbox", headers=bearer(key)), 401)
        assert_problem(await harness.client.get("/v1/me/inbox/counts", headers=bearer(key)), 401)
        assert_problem(await harness.client.post("/v1/me/inbox/read-all", headers=bearer(key)), 401)


async def test_a_user_token_is_not_an_api_key(harness: Harness, inbox_type: str) -> None:
    user = harness.user("alice")
    assert_problem(await harness.client.get("/v1/notification-types", headers=user), 401)
    assert_problem(await harness.client.get("/v1/users/alice", headers=user), 401)
    assert_problem(await harness.client.put("/v1/users/alice", json={"name": "A"}, headers=user), 401)
    r = await harness.client.post(
        "/v1/notifications", json={"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}}, headers=user
    )
    assert_problem(r, 401)
    assert_problem(await harness.client.post("/v1/users/bob/tokens", json={}, headers=user), 401)
    assert_problem(await harness.client.put("/v1/notification-types/x.y", json={}, headers=user), 401)
    # nothing was sent by the attempt
    assert (await harness.client.get("/v1/me/inbox", headers=user)).json()["items"] == []


# -- API key scopes ----------------------------------------------------------------------------


async def test_send_and_read_keys_cannot_administer(harness: Harness, inbox_type: str) -> None:
    await harness.client.put("/v1/users/carol", json={"name": "Carol"}, headers=harness.admin())
    for headers in (harness.sender(), harness.reader()):
        r = await harness.client.put("/v1/notification-types/new.type", json={"channels": ["inapp"]}, headers=headers)
        assert_problem(r, 403)
        r = await harness.client.put(
            f"/v1/notification-types/{inbox_type}/templates/inapp", json={"title": "hacked"}, headers=headers
        )
        assert_problem(r, 403)
        r = await harness.client.delete(f"/v1/notification-types/{inbox_type}", headers=headers)
        assert_problem(r, 403)
        r = await harness.client.put(
            "/v1/channel-accounts/smtp", json={"channel": "email", "config": {}}, headers=headers
        )
        assert_problem(r, 403)
        assert_problem(await harness.client.get("/v1/channel-accounts", headers=headers), 403)
        assert_problem(await harness.client.delete("/v1/users/carol", headers=headers), 403)
        r = await harness.client.post("/v1/announcements", json={"title": "nope"}, headers=headers)
        assert_problem(r, 403)

    # none of it took effect
    r = await harness.client.get("/v1/notification-types/new.type", headers=harness.reader())
    assert r.status_code == 404
    r = await harness.client.get(f"/v1/notification-types/{inbox_type}", headers=harness.reader())
    assert r.status_code == 200 and r.json()["templates"]["inapp"]["en"]["title"] == "Recharge succeeded"
    assert (await harness.client.get("/v1/users/carol", headers=harness.reader())).status_code == 200
    assert (await harness.client.get("/v1/announcements", headers=harness.reader())).json()["items"] == []


async def test_read_key_cannot_send(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.post(
        "/v1/notifications",
        json={"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}},
        headers=harness.reader(),
    )
    body = assert_problem(r, 403)
    assert "send" in body["detail"]
    assert_problem(await harness.client.post("/v1/users/alice/tokens", json={}, headers=harness.reader()), 403)
    assert_problem(await harness.client.put("/v1/users/alice", json={}, headers=harness.reader()), 403)
    assert (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"] == []


async def test_send_key_cannot_read(harness: Harness, inbox_type: str) -> None:
    r = await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
    assert r.status_code == 202
    assert_problem(await harness.client.get(f"/v1/notifications/{r.json()['id']}", headers=harness.sender()), 403)
    assert_problem(await harness.client.get("/v1/notification-types", headers=harness.sender()), 403)


async def test_an_admin_key_may_do_everything(harness: Harness) -> None:
    admin = harness.admin()
    r = await harness.client.put("/v1/notification-types/admin.test", json={"channels": ["inapp"]}, headers=admin)
    assert r.status_code == 201, r.text
    r = await harness.client.put(
        "/v1/notification-types/admin.test/templates/inapp", json={"title": "hi ${name}"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (await harness.client.put("/v1/users/dave", json={"name": "D"}, headers=admin)).status_code == 200
    assert (await harness.client.get("/v1/users/dave", headers=admin)).status_code == 200
    r = await harness.client.post(
        "/v1/notifications", json={"type": "admin.test", "to": ["dave"], "data": {"name": "Dave"}}, headers=admin
    )
    assert r.status_code == 202, r.text
    assert (await harness.client.get(f"/v1/notifications/{r.json()['id']}", headers=admin)).status_code == 200
    r = await harness.client.post("/v1/users/dave/tokens", json={}, headers=admin)
    assert r.status_code == 201, r.text
    assert (await harness.client.get("/v1/channel-accounts", headers=admin)).status_code == 200
    r = await harness.client.post("/v1/announcements", json={"title": "hello"}, headers=admin)
    assert r.status_code == 201, r.text
    assert (await harness.client.delete("/v1/users/dave", headers=admin)).status_code == 204
    assert (await harness.client.get("/v1/users/dave", headers=admin)).status_code == 404


async def test_unknown_and_revoked_keys_are_401(harness: Harness) -> None:
    assert_problem(await harness.client.get("/v1/notification-types", headers=bearer("hk_" + "A" * 43)), 401)
    assert_problem(await harness.client.get("/v1/notification-types", headers=bearer("not-a-key")), 401)
    async with harness.herald.db.write() as conn:
        key, plaintext = await create_api_key(conn, "doomed", ["admin"])
        assert await revoke_api_key(conn, key.id)
    body = assert_problem(await harness.client.get("/v1/notification-types", headers=bearer(plaintext)), 401)
    assert plaintext not in body["detail"]
    r = await harness.client.put("/v1/notification-types/x.y", json={}, headers=bearer(plaintext))
    assert_problem(r, 401)


async def test_key_lookup_is_by_exact_hash(harness: Harness) -> None:
    """A prefix or a case variant of a real key is not that key."""
    for fake in (harness.admin_key[:-1], harness.admin_key.upper(), harness.admin_key + "x"):
        assert_problem(await harness.client.get("/v1/notification-types", headers=bearer(fake)), 401)
    async with harness.herald.db.read() as conn:
        assert await find_api_key(conn, harness.admin_key[:-1]) is None


# -- minting tokens through the API ----------------------------------------------------------------


async def test_minted_token_works_for_that_user_only(harness: Harness, inbox_type: str) -> None:
    for user in ("alice", "bob"):
        r = await harness.trigger({"type": inbox_type, "to": [user], "data": {"amount": user}})
        assert r.status_code == 202
    r = await harness.client.post("/v1/users/alice/tokens", json={"expires_in": 600}, headers=harness.sender())
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"token", "expires_at"}
    assert verify_user_token(SECRET, body["token"]) == "alice"
    # the expiry is an RFC 3339 time with an offset, about ten minutes from now
    from datetime import UTC, datetime

    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.tzinfo is not None
    assert 590 <= (expires_at - datetime.now(UTC)).total_seconds() <= 610

    r = await harness.client.get("/v1/me/inbox", headers=bearer(body["token"]))
    assert r.status_code == 200
    assert [i["summary"] for i in r.json()["items"]] == ["充值 alice 元"]


async def test_minted_token_default_body(harness: Harness) -> None:
    r = await harness.client.post("/v1/users/eve/tokens", headers=harness.sender())
    assert r.status_code == 201, r.text
    assert verify_user_token(SECRET, r.json()["token"]) == "eve"


@pytest.mark.parametrize("expires_in", [0, 59, -1, 30 * 24 * 3600 + 1, 90 * 24 * 3600 + 1, 10**12, "soon", None])
async def test_token_lifetime_out_of_bounds_is_422(harness: Harness, expires_in: Any) -> None:
    r = await harness.client.post("/v1/users/alice/tokens", json={"expires_in": expires_in}, headers=harness.sender())
    body = assert_problem(r, 422)
    assert [e["field"] for e in body["errors"]] == ["expires_in"]


@pytest.mark.parametrize("expires_in", [60, 30 * 24 * 3600])  # up to HERALD_USER_TOKEN_MAX_SECONDS (30 days)
async def test_token_lifetime_bounds_are_inclusive(harness: Harness, expires_in: int) -> None:
    r = await harness.client.post("/v1/users/alice/tokens", json={"expires_in": expires_in}, headers=harness.sender())
    assert r.status_code == 201, r.text
    claims = jwt.decode(r.json()["token"], SECRET, algorithms=["HS256"])
    assert abs(claims["exp"] - time.time() - expires_in) < 5


# -- the CLI -------------------------------------------------------------------------------------


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"HERALD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/h.db", "HERALD_SECRET_KEY": SECRET}


async def test_cli_token_prints_a_token_alone_that_verifies(harness: Harness, inbox_type: str, tmp_path: Path) -> None:
    await give_alice_an_item(harness, inbox_type)
    result = CliRunner().invoke(cli_app, ["token", "alice"], env=cli_env(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    token = lines[0].strip()
    assert verify_user_token(SECRET, token) == "alice"
    r = await harness.client.get("/v1/me/inbox", headers=bearer(token))
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    r = await harness.client.get("/v1/me/inbox", headers=harness.user("bob"))
    assert r.json()["items"] == []


def test_cli_apikey_create_prints_one_key_that_works(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert CliRunner().invoke(cli_app, ["migrate"], env=env).exit_code == 0  # only serve/migrate create a database
    result = CliRunner().invoke(cli_app, ["apikey", "create", "--name", "x", "--scopes", "send,read"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    key = lines[0]
    assert key.startswith("hk_") and key == key.strip() and len(key) > 20

    async def use_it() -> tuple[int, int, int]:
        app = create_app(make_settings(env["HERALD_DATABASE_URL"]), run_worker=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
                read = await client.get("/v1/notification-types", headers=bearer(key))
                send = await client.put("/v1/users/u1", json={"name": "U"}, headers=bearer(key))
                admin = await client.put("/v1/notification-types/a.b", json={}, headers=bearer(key))
                return read.status_code, send.status_code, admin.status_code

    assert asyncio.run(use_it()) == (200, 200, 403)


@pytest.mark.parametrize("scopes", ["send,root", "", ",", "send;read"])
def test_cli_apikey_create_refuses_bad_scopes(tmp_path: Path, scopes: str) -> None:
    result = CliRunner().invoke(cli_app, ["apikey", "create", "--name", "x", "--scopes", scopes], env=cli_env(tmp_path))
    assert result.exit_code != 0
    assert "hk_" not in result.stdout


@pytest.mark.parametrize("expires_in", ["59", str(90 * 24 * 3600 + 1), "soon"])
def test_cli_token_refuses_a_lifetime_out_of_bounds(tmp_path: Path, expires_in: str) -> None:
    result = CliRunner().invoke(cli_app, ["token", "alice", "--expires-in", expires_in], env=cli_env(tmp_path))
    assert result.exit_code != 0
    assert result.stdout == ""


def test_cli_token_refuses_to_invent_a_key_the_server_does_not_have(tmp_path: Path) -> None:
    env: dict[str, str | None] = {**cli_env(tmp_path), "HERALD_SECRET_KEY": None}
    result = CliRunner().invoke(cli_app, ["token", "alice"], env=env)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert not list(tmp_path.glob("*.secret"))


def test_a_cached_token_still_expires() -> None:
    import time

    from herald.api.auth import UserTokenCache
    from herald.engine.tokens import BadToken

    cache = UserTokenCache()
    expires = int(time.time()) + 1
    token = jwt.encode({"sub": "alice", "exp": expires}, SECRET, algorithm="HS256")
    assert cache.verify(SECRET, token) == "alice"
    assert cache.verify(SECRET, token) == "alice"  # from the cache
    time.sleep(max(0.0, expires - time.time()) + 1.05)
    with pytest.raises(BadToken):
        cache.verify(SECRET, token)
