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

And coming back spread out: paho doubles its reconnect wait without jitter, so every
client that lost the same broker (every site after the RAU's broker restarts, every hub
worker) would knock again in step. `ReconnectPacer` draws each wait with full jitter
(edge_agent/backoff.py) and has paho only sleep it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from edge_agent.backoff import Backoff

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


class ReconnectPacer:
    """The reconnect waits of one paho client: call `next(client)` once at set-up and on
    each failed attempt, `connected()` and `lost(client)` from the callbacks."""

    def __init__(self, base_s: float, cap_s: float, healthy_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backoff = Backoff(base_s=base_s, cap_s=cap_s, healthy_s=healthy_s)
        self.clock = clock
        self.last_delay_s = 0.0
        self._up_since: float | None = None

    def next(self, client: Any) -> float:
        """Draw the wait before the next attempt and hand it to paho."""
        delay = self.backoff.next_delay_s()
        self.last_delay_s = delay
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)
        return delay

    def connected(self) -> None:
        self._up_since = self.clock()

    def lost(self, client: Any) -> None:
        """The link went: a link that held long enough starts the count over."""
        if self._up_since is not None:
            self.backoff.link_lasted(self.clock() - self._up_since)
            self._up_since = None
        self.next(client)
