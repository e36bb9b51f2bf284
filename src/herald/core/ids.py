"""Prefixed, time-sortable ids: ``ntf_``, ``itm_``, ``ann_``, ``dlv_`` + a ULID."""

from __future__ import annotations

import base64
import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 4648 base32 digit i -> Crockford digit i: 10 random bytes are exactly 16 base32 digits.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    return _encode(ms, 10) + _encode(rand, 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def new_ids(prefix: str, count: int) -> list[str]:
    """Many ids at once; cheaper than calling new_id in a loop for large fan-outs."""
    head = f"{prefix}_{_encode(int(time.time() * 1000), 10)}"
    digits = base64.b32encode(os.urandom(10 * count)).translate(_TO_CROCKFORD).decode()
    return [head + digits[i : i + 16] for i in range(0, 16 * count, 16)]
