"""Who a request comes from: forwarded headers count only from the configured proxies."""

from __future__ import annotations

import ipaddress

import pytest

from edge_agent.web.forwarded import client_address, forwarded_https, parse_address, within

PROXY = [ipaddress.ip_network("10.1.1.2/32"), ipaddress.ip_network("fd00::/64")]


@pytest.mark.parametrize(("peer", "header", "trusted", "client"), [
    ("127.0.0.1", "203.0.113.9", [], "127.0.0.1"),  # the default: no proxy, loopback included
    ("127.0.0.1", "203.0.113.9", PROXY, "127.0.0.1"),  # loopback is not a listed proxy
    ("10.1.1.2", "203.0.113.9", PROXY, "203.0.113.9"),
    ("10.1.1.2", "6.6.6.6, 203.0.113.9", PROXY, "203.0.113.9"),  # the client's own entries are left of it
    ("10.1.1.2", "203.0.113.9, 10.1.1.2", PROXY, "203.0.113.9"),  # a chain of trusted proxies
    ("10.1.1.2", "", PROXY, "10.1.1.2"),
    ("10.1.1.2", "not-an-address", PROXY, "10.1.1.2"),
    ("10.1.1.2", "203.0.113.9, junk", PROXY, "10.1.1.2"),
    ("fd00::7", "[2001:db8::1]:5555", PROXY, "2001:db8::1"),
    ("::ffff:10.1.1.2", "203.0.113.9:443", PROXY, "203.0.113.9"),
])
def test_the_client_is_the_peer_unless_a_trusted_proxy_forwarded_it(peer, header, trusted, client):
    assert client_address(peer, header, trusted) == client


@pytest.mark.parametrize(("peer", "proto", "https"), [
    ("10.1.1.2", "https", True), ("10.1.1.2", "http, https", True), ("10.1.1.2", "https, http", False),
    ("10.1.1.2", "", False), ("127.0.0.1", "https", False), ("10.1.1.3", "https", False),
])
def test_only_a_trusted_proxy_says_the_browser_used_tls(peer, proto, https):
    assert forwarded_https(peer, proto, PROXY) is https


def test_addresses_parse_or_are_none():
    assert str(parse_address("[::1]:80")) == "::1"
    assert parse_address("testclient") is None
    assert not within("testclient", PROXY)
