"""systemd notification and the service watchdog, pinged only while the agent makes progress.

The protocol (sd_notify(3), "Notes"): send a datagram of newline-separated KEY=VALUE
lines to the AF_UNIX socket named in $NOTIFY_SOCKET; a name starting with "@" is in
the abstract namespace (the "@" stands for a leading NUL byte). READY=1 ends a
Type=notify unit's start-up, WATCHDOG=1 keeps WatchdogSec= from firing, STOPPING=1
announces shutdown, STATUS=... is shown by `systemctl status`. With WatchdogSec set,
systemd puts the interval in $WATCHDOG_USEC and expects a ping at least that often;
sd_watchdog_enabled(3) advises pinging at half the interval.

The core loop calls `tick()` on every iteration; device threads call `beat(source)`
whenever they make progress. A ping is sent only when every registered source beat
within its own limit, so a stalled scale reader or gate thread lets systemd kill and
restart the agent (and the gate's permission relay drops meanwhile). Without
$NOTIFY_SOCKET (tests, a shell) everything here is a no-op apart from the bookkeeping.

    watchdog = Watchdog.from_environ(os.environ)
    watchdog.register("scale-L1", max_silence_s=5)
    watchdog.ready()
    while running:
        ...; watchdog.tick()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

_FROM_ENVIRON: str = "\0from-environ"


class Watchdog:
    def __init__(self, interval_s: float, notify_socket: str | None = _FROM_ENVIRON) -> None:
        # systemd hands the socket over in the environment, so that is where it is read by default.
        if notify_socket is _FROM_ENVIRON:
            notify_socket = os.environ.get("NOTIFY_SOCKET")
        self.interval_s = interval_s
        self.address = _address(notify_socket) if notify_socket else None
        self.pings = 0
        self.stalled: list[str] = []
        self._limits: dict[str, float] = {}
        self._beats: dict[str, float] = {}
        self._last_ping = float("-inf")
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], default_interval_s: float = 30.0) -> Watchdog:
        """The interval from $WATCHDOG_USEC and the socket from $NOTIFY_SOCKET (both optional)."""
        usec = environ.get("WATCHDOG_USEC", "")
        interval_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else default_interval_s
        return cls(interval_s, environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def sources(self) -> dict[str, float]:
        """The registered threads and the longest silence each is allowed."""
        with self._lock:
            return dict(self._limits)

    def register(self, source: str, max_silence_s: float) -> None:
        """A device thread the watchdog vouches for; it counts as fresh from now."""
        with self._lock:
            self._limits[source] = max_silence_s
            self._beats[source] = time.monotonic()

    def beat(self, source: str) -> None:
        """Progress from a device thread (cheap: one dict store)."""
        self._beats[source] = time.monotonic()

    def tick(self) -> bool:
        """From the core loop: ping if due and every source is fresh. True when it pinged."""
        now = time.monotonic()
        if now - self._last_ping < self.interval_s / 2:
            return False
        with self._lock:
            stalled = sorted(s for s, limit in self._limits.items() if now - self._beats.get(s, 0.0) > limit)
        if stalled != self.stalled:
            if stalled:
                log.error("watchdog_withheld stalled=%s", ",".join(stalled))
                self.status(f"stalled: {', '.join(stalled)}")
            else:
                log.warning("watchdog_resumed")
                self.status("running")
            self.stalled = stalled
        if stalled:
            return False
        self._last_ping = now
        if self._send("WATCHDOG=1"):
            self.pings += 1
            return True
        return False

    def ready(self, status: str = "running") -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self._send(f"STOPPING=1\nSTATUS={status}")

    def status(self, text: str) -> None:
        self._send("STATUS=" + text.replace("\n", " "))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            if self._sock is None:
                # Non-blocking: a notify socket nobody reads fills up (ten datagrams on Linux),
                # and the core loop, which pings, must never wait for systemd.
                self._sock = socket.socket(socket.AF_UNIX,
                                           socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._sock.sendto(message.encode("utf-8"), self.address)
            return True
        except BlockingIOError:
            log.warning("watchdog_notify_dropped reason=the notify socket is full")
            return False
        except OSError as err:
            # systemd gone or the socket replaced: log, and never take the core loop down.
            log.warning("watchdog_notify_failed error=%s", err)
            self.close()
            return False


def _address(notify_socket: str) -> str | bytes:
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    return notify_socket
