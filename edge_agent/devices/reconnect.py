"""Devices that hold a link and get it back: one backoff policy, one worker thread.

A scale line, a CCTV stream and a polled plate camera all do the same thing around
their own protocol: open the link, serve it until it fails, close it, wait, try again.
This module is that loop, once:

- `Backoff` is the waiting policy (edge_agent/backoff.py, shared with the MQTT links):
  exponential with full jitter, so many clients that lost the same server do not
  retry in step.
- `ReconnectingWorker` is the thread. A device subclasses it and supplies `_open()`,
  `_serve(link)` and `_close(link)`; it calls `_link_up()` from `_serve` once the link
  has proved itself (a port opened, a first frame, an HTTP response). The worker logs a
  loss once when the link goes and once when it comes back, never on every retry, with
  the device's own event names and its own logger, and keeps the figures every device
  reports in `health()`: connected, since (UTC, when the link last came up or went
  down), reconnects (outages that ended), link_errors (every failed open or lost link)
  and last_error.

`_serve` returns when it is done on purpose (stop asked, a video file at its end, one
snapshot taken); it raises when the link is lost: `LinkLost("silent for 3 s")` for a
loss it detects itself, or the transport's own error.

    class Reader(ReconnectingWorker):
        def _open(self): return serial.serial_for_url(url)
        def _serve(self, port):
            self._link_up()
            while not self._stopping.is_set(): ...
        def _close(self, port): port.close()

    reader = Reader(name="scale-L1", log=log, events=LinkEvents("scale_connected", ...),
                    context="lane=L1 url=...", backoff=Backoff(base_s=0.1, cap_s=5.0))
    reader.start(); reader.health()["connected"]; reader.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from edge_agent.backoff import Backoff
from edge_agent.errors import DeviceError


class LinkLost(DeviceError):
    """The link went away in a way the transport does not raise by itself (silence, end of stream)."""


@dataclass(frozen=True)
class LinkEvents:
    """The structured log event names of one kind of device link."""

    connected: str  # the first time the link is up (info)
    lost: str  # it went down, or could not be had at start (warning, once per outage)
    back: str  # it came back after a logged loss (warning, once per outage)
    failed: str  # a bug in the device's own code ended a link (error, with the traceback)


class ReconnectingWorker:
    """One thread that opens, serves and reopens a device link (see the module docstring).

    `transient_errors` are the exceptions a device's transport raises when the link fails:
    they are a reason in the loss log. Anything else is a bug: logged with its traceback
    under `events.failed`, and the link is reopened all the same, so the device lives on.
    """

    transient_errors: tuple[type[BaseException], ...] = (OSError,)
    # Longest a live thread goes without `_progress()`: its loops call it at every turn and
    # while it waits to retry, so only a thread stuck in a call (a driver, a callback) misses it.
    max_silence_s: float = 30.0

    def __init__(self, *, name: str, log: logging.Logger, events: LinkEvents, context: str,
                 backoff: Backoff) -> None:
        self.thread_name = name
        self.events = events
        self.context = context  # key=value fields naming the device in every link log line
        self.backoff = backoff
        self.connected = False
        self.reconnects = 0  # outages that ended with the link back
        self.losses = 0  # outages (each logged once)
        self.link_errors = 0  # failed opens and lost links, every retry counted
        self.last_error: str | None = None
        self._log = log
        self._since: datetime | None = None  # when the link last came up or went down
        self._down_since: float | None = None  # monotonic start of the outage being logged
        self._ever_up = False
        self._up_at: float | None = None  # monotonic time this cycle's link came up
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Set by the agent to the service watchdog's beat: called with the thread's name.
        self.heartbeat: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start the thread (once; a running worker is left as it is)."""
        if not self.running:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to end and wait up to `timeout_s` for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if not self._thread.is_alive():
                self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def watched(self) -> dict[str, float]:
        """The threads the service watchdog should hear from: name -> longest silence (s)."""
        return {self.thread_name: self.max_silence_s}

    def health(self) -> dict[str, Any]:
        """The link figures every device reports; devices add their own around them."""
        return {
            "connected": self.connected,
            "since": None if self._since is None else self._since.isoformat(),
            "reconnects": self.reconnects,
            "link_errors": self.link_errors,
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------------ what a device supplies

    def _open(self) -> Any:
        """Open the link and return it; raise when it cannot be had."""
        raise NotImplementedError

    def _serve(self, link: Any) -> None:
        """Use the link until stopped or done (return) or until it fails (raise); call `_link_up()`."""
        raise NotImplementedError

    def _close(self, link: Any) -> None:
        link.close()

    def _pause_s(self) -> float:
        """How long to wait after `_serve` returned without a failure (a poll interval, or 0)."""
        return 0.0

    def _idle(self, seconds: float) -> None:
        """Wait between tries; returns early on stop. A device may do small chores meanwhile."""
        end = time.monotonic() + seconds
        while not self._stopping.is_set():
            self._progress()  # waiting to retry is progress: the thread is not stuck
            left = end - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, 1.0))

    def _progress(self) -> None:
        """The thread is alive and turning (for the service watchdog); cheap, call often."""
        if self.heartbeat is not None:
            self.heartbeat(self.thread_name)

    def _on_stopped(self) -> None:
        """Runs in the thread as it ends."""

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._cycle()
        finally:
            if self.connected:
                self.connected = False
                self._since = datetime.now(UTC)
            self._on_stopped()

    def _cycle(self) -> None:
        self._progress()
        self._up_at = None
        try:
            link = self._open()
        except Exception as err:  # noqa: BLE001 - whatever the device raises, the thread must live
            if not self._stopping.is_set():
                self._went_down("open failed: " + self._describe(err, "open"))
                self._idle(self.backoff.next_delay_s())
            return
        failure: BaseException | None = None
        try:
            self._serve(link)
        except Exception as err:  # noqa: BLE001 - a lost link, or a bug that must not end the device
            failure = err
        finally:
            try:
                self._close(link)
            except Exception:  # noqa: BLE001 - closing a dead link may fail too
                self._log.debug("link_close_failed %s", self.context, exc_info=True)
        if self._stopping.is_set():
            return
        if self._up_at is not None:
            self.backoff.link_lasted(time.monotonic() - self._up_at)
        if failure is None:
            self.backoff.reset()  # done on purpose: the link worked
            self._idle(self._pause_s())
            return
        self._went_down(self._describe(failure, "serve"))
        self._idle(self.backoff.next_delay_s())

    def _describe(self, err: BaseException, phase: str) -> str:
        if not isinstance(err, (LinkLost, *self.transient_errors)):
            self._log.error("%s %s phase=%s", self.events.failed, self.context, phase, exc_info=err)
        if isinstance(err, LinkLost):
            return str(err)
        return f"{type(err).__name__}: {err}"

    # ------------------------------------------------------------------ up and down, logged once

    def _link_up(self) -> None:
        """The link works: called by `_serve` once per link, when it has proved itself."""
        now = time.monotonic()
        if self._up_at is None:
            self._up_at = now
        if self.connected:
            return
        self.connected = True
        self._since = datetime.now(UTC)
        if self._down_since is not None:
            self.reconnects += 1
            self._log.warning("%s %s down_s=%.1f", self.events.back, self.context, now - self._down_since)
            self._down_since = None
        elif not self._ever_up:
            self._log.info("%s %s", self.events.connected, self.context)
        self._ever_up = True

    def _went_down(self, reason: str) -> None:
        self.last_error = reason
        self.link_errors += 1
        if self.connected or self._since is None:
            self._since = datetime.now(UTC)
        self.connected = False
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.losses += 1
            self._log.warning("%s %s reason=%s", self.events.lost, self.context, reason)

