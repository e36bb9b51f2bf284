"""Prefixed, time-sortable ids: ``ntf_``, ``itm_``, ``ann_``, ``dlv_`` + a ULID."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


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
    ms = _encode(int(time.time() * 1000), 10)
    raw = os.urandom(10 * count)
    return [f"{prefix}_{ms}{_encode(int.from_bytes(raw[i * 10 : i * 10 + 10], 'big'), 16)}" for i in range(count)]
