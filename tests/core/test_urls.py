"""SSRF rules: an IPv6 address standing for an IPv4 one is judged by that IPv4 address; special-purpose
blocks are never public, whatever this Python's ``is_global`` says."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.urls import MASK, UnsafeURL, embedded_ipv4, is_public_address, redact_url, split_public_url

ipv4s = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
ipv6s = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)


def embeddings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """Every IPv6 spelling of ``v4`` a resolver or a URL may hand over."""
    n = int(v4)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | n),  # ::ffff:a.b.c.d (IPv4-mapped)
        ipaddress.IPv6Address(n),  # ::a.b.c.d (IPv4-compatible)
        ipaddress.IPv6Address((0x64FF9B << 96) | n),  # 64:ff9b::a.b.c.d (NAT64)
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1),  # 2002:AABB:CCDD::1 (6to4)
    ]


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "192.0.0.8",
        "192.0.0.170",
        "100.64.0.1",
        "198.18.0.1",
        "0.0.0.0",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "2001::1",  # Teredo
        "64:ff9b:1::1",  # local-use NAT64
        "2001:db8::1",
        "224.0.0.1",
        "ff02::1",
    ],
)
def test_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)
    with pytest.raises(UnsafeURL):
        host = f"[{address}]" if ":" in address else address
        split_public_url(f"https://{host}/push", allow_private=False)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


@given(v4=ipv4s)
def test_an_embedded_ipv4_address_is_judged_as_itself(v4: ipaddress.IPv4Address) -> None:
    verdict = is_public_address(str(v4))
    for v6 in embeddings(v4):
        assert embedded_ipv4(v6) == v4
        assert is_public_address(str(v6)) == verdict, (v6, v4)


@given(v4=ipv4s)
def test_public_ipv4_is_globally_reachable(v4: ipaddress.IPv4Address) -> None:
    if is_public_address(str(v4)):
        assert v4.is_global and not v4.is_multicast
        assert not v4.is_private and not v4.is_loopback and not v4.is_link_local and not v4.is_reserved


@given(v6=ipv6s)
def test_public_ipv6_is_global_and_never_hides_a_private_ipv4(v6: ipaddress.IPv6Address) -> None:
    if is_public_address(str(v6)):
        inner = embedded_ipv4(v6)
        assert inner is None or is_public_address(str(inner))
        assert not v6.is_loopback and not v6.is_link_local and not v6.is_multicast and not v6.is_site_local
        if inner is None:
            assert v6.is_global


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h.example/send?access_token=abc&x=1", f"https://h.example/send?access_token={MASK}&x={MASK}"),
        ("https://bot:pw@h.example/x", f"https://bot:{MASK}@h.example/x"),
        ("https://tok@h.example/x", f"https://{MASK}@h.example/x"),
        ("https://h.example/hooks/herald", "https://h.example/hooks/herald"),
        ("https://h.example/cgi-bin/webhook/send?key=k", f"https://h.example/cgi-bin/webhook/send?key={MASK}"),
        ("https://h.example/open-apis/bot/v2/hook/ab-12", f"https://h.example/open-apis/bot/v2/hook/{MASK}"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
