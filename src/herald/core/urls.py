"""User-supplied URLs: the SSRF rules (which addresses are public), and URLs with their secrets masked.

Pure: no resolving here (engine/urls.py resolves), no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "********"
"""What a secret reads as everywhere it is shown (API reads, logs)."""


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


# IANA special-purpose registries, "globally reachable: false" (plus multicast and reserved), spelled
# out because ``is_global`` of older Pythons misses some (3.11 calls 192.0.0.8 global).
_NON_GLOBAL_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_NON_GLOBAL_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and IPv4-compatible (judged by their IPv4 part before this)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo among them
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible
    (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``) or 6to4 (``2002:AABB:CCDD::``); None for others."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public_address(address: str) -> bool:
    """Whether ``address`` is globally reachable unicast; an IPv6 address that embeds an IPv4 one
    is judged by the IPv4 address (a NAT64 or 6to4 gateway would carry the request there)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        v4 = embedded_ipv4(ip)
        if v4 is not None:
            return _public_v4(v4)
        return ip.is_global and not ip.is_multicast and not any(ip in net for net in _NON_GLOBAL_V6)
    return _public_v4(ip)


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not ip.is_multicast and not any(ip in net for net in _NON_GLOBAL_V4)


# --- masking: secrets inside URLs -------------------------------------------------------------

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.~%:+=!$,;*']+")
_PLAIN_WORD = re.compile(r"[a-z]+(?:[-_][a-z]+)*|v\d{1,2}")
_HERALD_ID = re.compile(r"[a-z]{2,4}_[0-9A-HJKMNP-TV-Z]{26}")
# Path segments after one of these name the hook/key itself (Feishu …/hook/<token>, Slack
# …/services/T…/B…/<token>, Discord …/webhooks/<id>/<token>, FCM …/send/<token>).
_TOKEN_PARENTS = frozenset(
    {"hook", "hooks", "webhook", "webhooks", "services", "send", "push", "wpush", "token", "tokens", "key", "keys"}
)


def looks_like_token(segment: str) -> bool:
    """A path segment that is probably a credential: long, token characters, letters and digits."""
    if _HERALD_ID.fullmatch(segment) or not _TOKEN_CHARS.fullmatch(segment):
        return False
    if len(segment) >= 32:
        return True
    return len(segment) >= 16 and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)


def _mask_path(path: str) -> str:
    segments = path.split("/")
    out: list[str] = []
    after_parent = False
    for segment in segments:
        secret = bool(segment) and (looks_like_token(segment) or (after_parent and not _PLAIN_WORD.fullmatch(segment)))
        out.append(MASK if secret else segment)
        after_parent = after_parent or segment.lower() in _TOKEN_PARENTS
    return "/".join(out)


def mask_query(query: str) -> str:
    """Every value of a query string masked (names kept); a bare token without ``=`` masked whole."""
    parts = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq:
            parts.append(f"{name}={MASK}" if value else part)
        else:
            parts.append(MASK if part else part)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with whatever may be a credential masked: the userinfo, every query value, the
    fragment and path segments that look like tokens. Scheme, host, port and the rest of the path
    stay, so the URL still says where it goes. Idempotent."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        # "user:password@" keeps a plain user name; a lone "token@" or a token as the user is masked
        shown = f"{user}:{MASK}" if colon and user and not looks_like_token(user) else MASK
        netloc = f"{shown}@{hostport}"
    query = mask_query(parts.query) if parts.query else ""
    fragment = MASK if parts.fragment else ""
    if not netloc and url.startswith(f"{parts.scheme}://"):
        # urlunsplit drops an empty authority: keep sqlite+aiosqlite:///path and unix:///path as written
        tail = (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
        return f"{parts.scheme}://{_mask_path(parts.path)}{tail}"
    return urlunsplit((parts.scheme, netloc, _mask_path(parts.path), query, fragment))
