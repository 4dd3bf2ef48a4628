"""Noticing a dead link in bounded time.

A link can die without a word: a NAT or firewall forgets the connection, a cable is
cut behind a switch, the far end loses power. TCP then says nothing for as long as
nothing is sent, and retransmits for about fifteen minutes (net.ipv4.tcp_retries2)
when something is. Two bounds close that gap:

- MQTT keepalive: with no packet in `keepalive_s`, paho sends PINGREQ and drops the
  link when nothing comes back within another `keepalive_s`: silence is noticed within
  twice the keepalive.
- TCP_USER_TIMEOUT (Linux, RFC 5482): data sent and not acknowledged for `keepalive_s`
  drops the connection, so a site publishing into a dead link does not wait for the
  keepalive either.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


def bound_socket_timeout(sock: Any, keepalive_s: float) -> bool:
    """Give up on unacknowledged data after `keepalive_s`; False where the OS cannot."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if sock is None or option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, int(keepalive_s * 1000))
    except (OSError, AttributeError, ValueError) as err:
        log.debug("tcp_user_timeout_not_set error=%s", err)
        return False
    return True
