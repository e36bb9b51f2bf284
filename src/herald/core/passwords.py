"""Console passwords: argon2id (RFC 9106) through argon2-cffi, a maintained binding of the reference
implementation, with its default parameters (which follow the RFC's recommendation and move with it:
``needs_rehash`` tells when a stored hash was made with older ones).

argon2 is imported at the first hash or check, not when Herald starts (tests/test_footprint.py).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """The encoded hash (algorithm, parameters, salt and digest in one string)."""
    return _hasher().hash(password)


def verify_password(encoded: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    return _hasher().check_needs_rehash(encoded)


@cache
def dummy_hash() -> str:
    """A hash to check a password against when the username is unknown, so that an unknown name
    takes as long to refuse as a wrong password (the answer's time does not tell which names exist)."""
    return hash_password("herald: no such console account")
