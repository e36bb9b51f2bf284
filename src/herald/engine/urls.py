"""Resolving user-supplied URLs before Herald stores them (SSRF): every address must be public."""

from __future__ import annotations

import asyncio
import socket

from herald.core.errors import Invalid
from herald.core.urls import UnsafeURL, is_public_address, split_public_url


async def require_public_url(url: str, *, field: str, allow_private: bool) -> None:
    """``Invalid`` naming ``field`` unless ``url`` is https (http too when private URLs are allowed)
    and every address its host resolves to is public (skipped when private URLs are allowed)."""
    try:
        host, port = split_public_url(url, allow_private=allow_private)
    except UnsafeURL as exc:
        raise Invalid([(field, str(exc))]) from exc
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Invalid([(field, f"the host does not resolve: {exc.strerror or exc}")]) from exc
    if not infos or not all(is_public_address(str(info[4][0])) for info in infos):
        raise Invalid([(field, "the host resolves to a private, loopback or link-local address")])
