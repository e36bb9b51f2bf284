"""A user token lives at most HERALD_USER_TOKEN_MAX_SECONDS: a correctly signed token whose ``exp``
lies further ahead is refused, and nothing mints a longer one (issue 7, item 7)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from herald.cli import app as cli
from herald.config import Settings
from herald.engine.tokens import CLOCK_SKEW_SECONDS, BadToken, verify_user_token_expiry
from tests.conftest import SECRET, Harness

DAY = 24 * 3600


def signed(user_id: str, lifetime: int) -> str:
    """A token as a business backend mints it with the shared secret."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + lifetime}, SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_default_cap_is_30_days() -> None:
    assert Settings(database_url="sqlite+aiosqlite:///:memory:").user_token_max_seconds == 30 * DAY


async def test_a_far_future_exp_is_refused(harness: Harness) -> None:
    r = await harness.client.get("/v1/me/inbox", headers=bearer(signed("u1", 10 * 365 * DAY)))
    assert r.status_code == 401 and "HERALD_USER_TOKEN_MAX_SECONDS" in r.text
    r = await harness.client.get("/v1/me/inbox", headers=bearer(signed("u1", 30 * DAY)))
    assert r.status_code == 200, r.text


async def test_the_cap_follows_the_setting(harness: Harness) -> None:
    harness.herald.settings.user_token_max_seconds = 3600
    assert (await harness.client.get("/v1/me/inbox", headers=bearer(signed("u1", 2 * 3600)))).status_code == 401
    assert (await harness.client.get("/v1/me/inbox", headers=bearer(signed("u1", 1800)))).status_code == 200


async def test_minting_beyond_the_cap_is_422(harness: Harness) -> None:
    harness.herald.settings.user_token_max_seconds = 7 * DAY
    r = await harness.client.post("/v1/users/u1/tokens", json={"expires_in": 7 * DAY + 1}, headers=harness.sender())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_in"
    r = await harness.client.post("/v1/users/u1/tokens", json={"expires_in": 7 * DAY}, headers=harness.sender())
    assert r.status_code == 201, r.text
    assert (await harness.client.get("/v1/me/inbox", headers=bearer(r.json()["token"]))).status_code == 200


def test_the_cli_refuses_an_expires_in_beyond_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HERALD_SECRET_KEY", SECRET)
    monkeypatch.setenv("HERALD_USER_TOKEN_MAX_SECONDS", str(DAY))
    runner = CliRunner()
    refused = runner.invoke(cli, ["token", "u1", "--expires-in", str(DAY + 1)])
    assert refused.exit_code == 2 and "HERALD_USER_TOKEN_MAX_SECONDS" in refused.output
    minted = runner.invoke(cli, ["token", "u1", "--expires-in", str(DAY)])
    assert minted.exit_code == 0, minted.output
    token = minted.stdout.strip().splitlines()[-1]
    assert verify_user_token_expiry(SECRET, token, max_lifetime=DAY)[0] == "u1"


@settings(max_examples=60, deadline=None)
@given(cap=st.integers(min_value=60, max_value=90 * DAY), lifetime=st.integers(min_value=1, max_value=20 * 365 * DAY))
def test_a_token_passes_exactly_when_it_ends_within_the_cap(cap: int, lifetime: int) -> None:
    # a few seconds either side of the edge are left out: the clock moves while the test runs
    if abs(lifetime - (cap + CLOCK_SKEW_SECONDS)) < 5:
        return
    token = signed("u1", lifetime)
    if lifetime <= cap + CLOCK_SKEW_SECONDS:
        assert verify_user_token_expiry(SECRET, token, max_lifetime=cap)[0] == "u1"
    else:
        with pytest.raises(BadToken, match="HERALD_USER_TOKEN_MAX_SECONDS"):
            verify_user_token_expiry(SECRET, token, max_lifetime=cap)
