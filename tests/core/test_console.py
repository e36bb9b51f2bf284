"""The console's pure decisions (core/console.py) and its password hashing (core/passwords.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.console import (
    REDACTED,
    Role,
    normalized_username,
    password_problem,
    redacted,
    session_expiry,
    throttle_wait,
    username_problem,
)
from herald.core.passwords import dummy_hash, hash_password, needs_rehash, verify_password

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def test_roles_include_the_ones_before_them() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER) and not Role.OPERATOR.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.OPERATOR) and Role.VIEWER.allows(Role.VIEWER)


@given(
    created=st.integers(0, 50 * 3600),
    idle_for=st.integers(0, 50 * 3600),
)
def test_a_session_expires_at_whichever_timeout_comes_first(created: int, idle_for: int) -> None:
    created_at = NOW - timedelta(seconds=created)
    last_seen = max(created_at, NOW - timedelta(seconds=idle_for))
    got = session_expiry(created_at, last_seen, NOW, idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    if created >= 12 * 3600:
        assert got == "absolute"
    elif (NOW - last_seen) >= timedelta(minutes=30):
        assert got == "idle"
    else:
        assert got is None


def test_throttle_waits_until_the_limit_th_newest_failure_leaves_the_window() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4, 10)]
    assert throttle_wait(failures, NOW, limit=6, window=WINDOW) == 0
    # the 5th newest failed 10 minutes ago: 5 more minutes
    assert throttle_wait(failures, NOW, limit=5, window=WINDOW) == 5 * 60
    assert throttle_wait(failures, NOW, limit=2, window=WINDOW) == 13 * 60
    assert throttle_wait([NOW - timedelta(minutes=20)] * 9, NOW, limit=5, window=WINDOW) == 0


@given(ages=st.lists(st.integers(0, 40 * 60), max_size=30), limit=st.integers(1, 10))
def test_throttle_wait_is_zero_exactly_when_fewer_than_limit_failed_in_the_window(ages: list[int], limit: int) -> None:
    failures = [NOW - timedelta(seconds=a) for a in ages]
    wait = throttle_wait(failures, NOW, limit=limit, window=WINDOW)
    in_window = sum(1 for a in ages if a < WINDOW.total_seconds())
    assert (wait == 0) == (in_window < limit)
    assert 0 <= wait <= WINDOW.total_seconds()
    # after waiting, one more try is allowed
    later = NOW + timedelta(seconds=wait)
    assert throttle_wait(failures, later, limit=limit, window=WINDOW) == 0


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice", True),
        ("<script>alert(1)</script>", True),
        ("运营小王", True),
        ("", False),
        ("x" * 65, False),
        ("a\x00b", False),
        ("a\nb", False),
        ("a\u202eb", False),  # right-to-left override
        ("a\u200bb", False),  # zero-width space
    ],
)
def test_usernames_are_printable_text_of_at_most_64_characters(name: str, ok: bool) -> None:
    assert (username_problem(normalized_username(name)) is None) is ok


def test_usernames_are_stored_nfc_and_trimmed() -> None:
    assert normalized_username("  Zoe\u0301 ") == "Zoé"


def test_passwords_between_8_and_1024_characters() -> None:
    assert password_problem("1234567") is not None
    assert password_problem("12345678") is None
    assert password_problem("x" * 1025) is not None
    assert password_problem("pass\x00word") is not None


def test_redacted_hides_secret_keys_at_any_depth() -> None:
    details = {"role": "admin", "password": "p", "nested": {"api_key": "k", "ok": [{"Token": "t", "n": 1}]}}
    assert redacted(details) == {
        "role": "admin",
        "password": REDACTED,
        "nested": {"api_key": REDACTED, "ok": [{"Token": REDACTED, "n": 1}]},
    }


def test_argon2id_hashes_verify_and_refuse() -> None:
    encoded = hash_password("correct horse")
    assert encoded.startswith("$argon2id$") and "correct horse" not in encoded
    assert verify_password(encoded, "correct horse")
    assert not verify_password(encoded, "correct horsf")
    assert not verify_password("not a hash", "correct horse")
    assert hash_password("correct horse") != encoded  # salted
    assert not needs_rehash(encoded)
    assert not verify_password(dummy_hash(), "")
