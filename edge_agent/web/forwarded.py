"""Who a request comes from, and whether it came over TLS, believing forwarded headers
only from the reverse proxies the site names (`console.trusted_proxies`).

`X-Forwarded-For` is a list each proxy appends the address it saw to; everything left of
what a trusted proxy appended was written by the client, so it is read from the right
and the first address that is not a trusted proxy is the client (MDN, "X-Forwarded-For",
"Selecting an IP address"). With no trusted proxy (the default) the headers are ignored
and the TCP peer is the client: rotating the header from anywhere, loopback included,
changes nothing. uvicorn's own proxy-header handling is switched off (server.py), since
it believes loopback by default.

    client_address("127.0.0.1", "10.1.1.5, 10.9.9.9", trusted)   # "10.9.9.9" when 127.0.0.1 is trusted
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """An IP address, also from `[v6]:port` or `v4:port`; IPv4-mapped IPv6 as IPv4; None if not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: str | Address | None, networks: Sequence[Network]) -> bool:
    parsed = parse_address(address) if isinstance(address, str) else address
    return parsed is not None and any(parsed.version == n.version and parsed in n for n in networks)


def client_address(peer: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
    """The client's address: the TCP peer, or what trusted proxies say they saw."""
    if not within(peer, trusted):
        return peer
    current = peer
    for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
        address = parse_address(hop)
        if address is None:
            return current  # a trusted proxy wrote something unreadable: the proxy is the client
        current = str(address)
        if not within(address, trusted):
            return current
    return current


def forwarded_https(peer: str, forwarded_proto: str, trusted: Sequence[Network]) -> bool:
    """True when a trusted proxy says the client reached it over TLS (the nearest proxy's word)."""
    if not within(peer, trusted) or not forwarded_proto.strip():
        return False
    return forwarded_proto.split(",")[-1].strip().lower() == "https"
