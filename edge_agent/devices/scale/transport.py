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
and reopened with backoff up to `reconnect_max_s` (devices/reconnect.py: full jitter,
the loss logged once and the return once). Bad frames are counted and logged at most every few seconds; nothing in
a frame can stop the thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edge_agent.config import ScaleConfig
from edge_agent.devices.reconnect import Backoff, LinkEvents, LinkLost, ReconnectingWorker
from edge_agent.devices.scale.frame import BadFrame, Notice, WeightFrame
from edge_agent.devices.scale.protocols import spec_for
from edge_agent.devices.scale.stability import Captured, Emptied, StabilityDetector, StabilityRule
from edge_agent.models import ScaleEmptied, WeightReading, WeightStable

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0  # at most one warning per kind of bad input per this period
FIRST_BACKOFF_S = 0.1
LINK_EVENTS = LinkEvents(connected="scale_connected", lost="scale_unavailable", back="scale_back",
                         failed="scale_reader_failed")


class ScaleReader(ReconnectingWorker):
    """Reads one indicator on a daemon thread and posts edge_agent.models events.

        reader = ScaleReader("L1", ScaleConfig(url="socket://127.0.0.1:4001"), core.post)
        reader.start()
        reader.health()["last_stable_kg"]
        reader.stop()
    """

    # pyserial raises SerialException (an OSError) for I/O and ValueError for settings it refuses.
    transient_errors = (OSError, ValueError)

    def __init__(self, lane_id: str, config: ScaleConfig, post: Callable[[object], None]) -> None:
        self.lane_id = lane_id
        self.config = config
        self.post = post
        self.spec = spec_for(config.protocol)
        self.detector = StabilityDetector(StabilityRule.from_config(config))
        self.source = f"scale-{lane_id}"
        super().__init__(
            name=self.source, log=log, events=LINK_EVENTS,
            context=f"lane={lane_id} url={config.url} protocol={self.spec.name}",
            backoff=Backoff(base_s=FIRST_BACKOFF_S, cap_s=config.reconnect_max_s),
        )
        self._counts = {"frames": 0, "rejected": 0, "errors": 0, "notices": 0, "skipped_bytes": 0}
        self._last_reject: dict[str, str] | None = None
        self._last_stable_kg: float | None = None
        self._last_kg: float | None = None
        self._last_frame_mono: float | None = None
        self._rate_mark = (time.monotonic(), 0)
        self._rate = 0.0
        self._next_log = {"rejected": 0.0, "notice": 0.0}
        self._unlogged = {"rejected": 0, "notice": 0}

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        mark_t, mark_frames = self._rate_mark
        frames = self._counts["frames"]
        if now - mark_t >= 1.0:
            self._rate = (frames - mark_frames) / (now - mark_t)
            self._rate_mark = (now, frames)
        counts = self._counts
        return {
            "protocol": self.spec.name,
            "url": self.config.url,
            "connected": self.connected,
            "frames_per_s": round(self._rate, 2),
            **{k: counts[k] for k in ("frames", "rejected", "errors", "notices")},
            "reconnects": self.reconnects,
            "skipped_bytes": counts["skipped_bytes"],
            "last_kg": self._last_kg,
            "last_stable_kg": self._last_stable_kg,
            "last_frame_age_s": None if self._last_frame_mono is None else round(now - self._last_frame_mono, 3),
            "last_reject": self._last_reject,
            **super().health(),
        }

    # ------------------------------------------------------------------ the link

    def _open(self):
        import serial

        c = self.config
        return serial.serial_for_url(
            c.url, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity, stopbits=c.stopbits,
            timeout=min(0.05, c.poll_interval_s),
        )

    def _serve(self, port) -> None:
        """Read until stopped; a line that goes silent is a lost link."""
        self._link_up()
        try:
            self._read(port)
        finally:
            self.detector.reset_window()  # a gap in the frames is not stillness

    def _read(self, port) -> None:
        parser = self.spec.parser()
        request = self.spec.request
        interval = self.config.poll_interval_s
        last_data = next_poll = time.monotonic()
        skipped = 0
        while not self._stopping.is_set():
            self._progress()
            now = time.monotonic()
            if request is not None and now >= next_poll:
                port.write(request)
                next_poll = max(next_poll + interval, now)
            data = port.read(port.in_waiting or 1)
            now = time.monotonic()
            if not data:
                if now - last_data > self.config.silence_timeout_s:
                    raise LinkLost(f"silent for {self.config.silence_timeout_s}s")
                continue
            last_data = now
            try:
                self._handle(parser.feed(data), now)
            except Exception:
                self._counts["errors"] += 1
                log.exception("scale_frame_failed lane=%s", self.lane_id)
            self._counts["skipped_bytes"] += parser.skipped_bytes - skipped
            skipped = parser.skipped_bytes

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
