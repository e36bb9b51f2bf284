"""SSRF rules for user-supplied URLs (push endpoints, ...): the pure part."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    pass


def split_public_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    """The (host, port) to resolve, or UnsafeURL: https only (http too when private URLs are
    allowed), no credentials, and a literal IP must be public."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL("not a valid URL") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeURL(f"the scheme must be {' or '.join(allowed)}")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("credentials in the URL are not allowed")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None and not allow_private and not is_public_address(str(literal)):
        raise UnsafeURL("the address is private, loopback or link-local")
    return parts.hostname, port


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast
