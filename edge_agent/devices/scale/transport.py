"""ScaleReader: one thread per weighbridge, from serial bytes to core events.

The site names its line as pyserial's `serial_for_url` understands it: `/dev/ttyUSB0`,
`/dev/serial/by-id/...`, or `socket://host:port` for a serial device server. The
reader feeds the protocol's parser, stamps each reading with the time, runs the
stability rule and posts:

- `WeightReading` for every decoded frame (live display; the core keeps the latest);
- `WeightStable` once per captured weighing, with the raw frames in hex as evidence;
- `ScaleEmptied` when the bridge is back in the zero band after a load.

Polled protocols get their request every `poll_interval_s`. A line that goes silent
for `silence_timeout_s`, an unplugged adapter or a dropped TCP connection is closed
and reopened with backoff up to `reconnect_max_s`; the loss is logged once and the
return once. Bad frames are counted and logged at most every few seconds; nothing in
a frame can stop the thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edge_agent.config import ScaleConfig
from edge_agent.devices.scale.protocols import spec_for
from edge_agent.devices.scale.reading import BadFrame, Notice, WeightFrame
from edge_agent.devices.scale.stability import Captured, Emptied, StabilityDetector, StabilityRule
from edge_agent.models import ScaleEmptied, WeightReading, WeightStable

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0  # at most one warning per kind of bad input per this period
FIRST_BACKOFF_S = 0.1
HEALTHY_LINK_S = 5.0  # a connection that lasted this long resets the backoff


class ScaleReader:
    """Reads one indicator on a daemon thread and posts edge_agent.models events.

        reader = ScaleReader("L1", ScaleConfig(url="socket://127.0.0.1:4001"), core.post)
        reader.start()
        reader.health()["last_stable_kg"]
        reader.stop()
    """

    def __init__(self, lane_id: str, config: ScaleConfig, post: Callable[[object], None]) -> None:
        self.lane_id = lane_id
        self.config = config
        self.post = post
        self.spec = spec_for(config.protocol)
        self.detector = StabilityDetector(StabilityRule.from_config(config))
        self.source = f"scale-{lane_id}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._ever_connected = False
        self._down_logged = False
        self._counts = {"frames": 0, "rejected": 0, "errors": 0, "notices": 0, "reconnects": 0, "skipped_bytes": 0}
        self._last_reject: dict[str, str] | None = None
        self._last_stable_kg: float | None = None
        self._last_kg: float | None = None
        self._last_frame_mono: float | None = None
        self._rate_mark = (time.monotonic(), 0)
        self._rate = 0.0
        self._next_log = {"rejected": 0.0, "notice": 0.0}
        self._unlogged = {"rejected": 0, "notice": 0}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.source, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        mark_t, mark_frames = self._rate_mark
        frames = self._counts["frames"]
        if now - mark_t >= 1.0:
            self._rate = (frames - mark_frames) / (now - mark_t)
            self._rate_mark = (now, frames)
        return {
            "protocol": self.spec.name,
            "url": self.config.url,
            "connected": self._connected,
            "frames_per_s": round(self._rate, 2),
            **self._counts,
            "last_kg": self._last_kg,
            "last_stable_kg": self._last_stable_kg,
            "last_frame_age_s": None if self._last_frame_mono is None else round(now - self._last_frame_mono, 3),
            "last_reject": self._last_reject,
        }

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stop.is_set():
            try:
                port = self._open()
            except Exception as err:  # noqa: BLE001 - SerialException, OSError, ValueError; the thread must live
                self._went_down(f"open failed: {err}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max_s)
                continue
            self._came_up()
            opened = time.monotonic()
            try:
                reason = self._read_connection(port)
            except Exception as err:  # noqa: BLE001 - a read on a vanished device or a closed socket
                reason = f"{type(err).__name__}: {err}"
            finally:
                with contextlib.suppress(Exception):  # closing a dead port may fail too
                    port.close()
            self.detector.reset_window()
            # A link that worked for a while starts over fast; one that drops at once
            # (a server accepting and closing) keeps backing off.
            if time.monotonic() - opened > HEALTHY_LINK_S:
                backoff = FIRST_BACKOFF_S
            else:
                backoff = min(backoff * 2, self.config.reconnect_max_s)
            if reason:
                self._went_down(reason)
                self._stop.wait(backoff)
        self._connected = False

    def _open(self):
        import serial

        c = self.config
        return serial.serial_for_url(
            c.url, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity, stopbits=c.stopbits,
            timeout=min(0.05, c.poll_interval_s),
        )

    def _read_connection(self, port) -> str:
        """Read until stopped ("" returned) or the line goes silent (the reason)."""
        parser = self.spec.parser()
        request = self.spec.request
        interval = self.config.poll_interval_s
        last_data = next_poll = time.monotonic()
        skipped = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if request is not None and now >= next_poll:
                port.write(request)
                next_poll = max(next_poll + interval, now)
            data = port.read(port.in_waiting or 1)
            now = time.monotonic()
            if not data:
                if now - last_data > self.config.silence_timeout_s:
                    return f"silent for {self.config.silence_timeout_s}s"
                continue
            last_data = now
            try:
                self._handle(parser.feed(data), now)
            except Exception:
                self._counts["errors"] += 1
                log.exception("scale_frame_failed lane=%s", self.lane_id)
            self._counts["skipped_bytes"] += parser.skipped_bytes - skipped
            skipped = parser.skipped_bytes
        return ""

    def _handle(self, frames: list, now: float) -> None:
        at = datetime.now(UTC)
        for frame in frames:
            if isinstance(frame, WeightFrame):
                self._on_reading(frame, now, at)
            elif isinstance(frame, BadFrame):
                self._counts["rejected"] += 1
                # The log is rate-limited; the technician's view keeps the newest one whole.
                self._last_reject = {"reason": frame.reason, "raw": frame.raw[:64].hex(), "at": at.isoformat()}
                self._rate_limited("rejected", now, "scale_frame_rejected lane=%s reason=%s raw=%s",
                                   frame.reason, frame.raw.hex())
            elif isinstance(frame, Notice):
                self._counts["notices"] += 1
                if frame.error:
                    self._counts["errors"] += 1
                    self._rate_limited("notice", now, "scale_indicator_error lane=%s code=%s raw=%s",
                                       frame.code, frame.raw.hex())

    def _on_reading(self, reading: WeightFrame, now: float, at: datetime) -> None:
        self._counts["frames"] += 1
        self._last_kg = reading.value_kg
        self._last_frame_mono = now
        self.post(WeightReading(
            lane=self.lane_id, at=at, source=self.source, value_kg=reading.value_kg, net=reading.net,
            stable=reading.stable, out_of_range=reading.out_of_range, raw=reading.raw,
        ))
        for outcome in self.detector.update(reading, now):
            if isinstance(outcome, Captured):
                self._last_stable_kg = outcome.gross_kg
                log.info("scale_weighed lane=%s gross_kg=%s frames=%d", self.lane_id, outcome.gross_kg,
                         len(outcome.raw_frames))
                self.post(WeightStable(
                    lane=self.lane_id, at=at, source=self.source, gross_kg=outcome.gross_kg,
                    division_kg=self.config.division_kg, raw_frames=[raw.hex() for raw in outcome.raw_frames],
                ))
            elif isinstance(outcome, Emptied):
                self.post(ScaleEmptied(lane=self.lane_id, at=at, source=self.source))

    # ------------------------------------------------------------------ logging

    def _rate_limited(self, kind: str, now: float, message: str, *args: Any) -> None:
        if now < self._next_log[kind]:
            self._unlogged[kind] += 1
            return
        log.warning(message + " suppressed=%d", self.lane_id, *args, self._unlogged[kind])
        self._unlogged[kind] = 0
        self._next_log[kind] = now + LOG_EVERY_S

    def _went_down(self, reason: str) -> None:
        if self._connected or not self._down_logged:
            log.warning("scale_unavailable lane=%s url=%s reason=%s", self.lane_id, self.config.url, reason)
            self._down_logged = True
        self._connected = False

    def _came_up(self) -> None:
        if self._ever_connected:
            self._counts["reconnects"] += 1
            log.warning("scale_back lane=%s url=%s", self.lane_id, self.config.url)
        else:
            log.info("scale_connected lane=%s url=%s protocol=%s", self.lane_id, self.config.url, self.spec.name)
        self._ever_connected = True
        self._down_logged = False
        self._connected = True
