"""The last few seconds of a camera, kept small enough for a Raspberry Pi.

A raw 1080p frame is 6 MB; twenty seconds of them at 10 frames/s would be 1.2 GB. The
ring therefore keeps JPEG-encoded, downscaled frames at a reduced rate (`ring_fps`),
bounded twice: by age (`seconds`) and by total bytes (`max_bytes`), whichever bites
first, so a noisy night scene that compresses badly cannot grow it without limit.

The ring holds bytes and timestamps only; the camera thread decides when a frame is
due (`due`) and encodes it. Everything here is thread-safe: the camera thread pushes,
the evidence worker reads windows.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RingFrame:
    """One stored frame: when it was taken (monotonic for windows, UTC for people)."""

    at_mono: float
    at_utc: datetime
    jpeg: bytes
    width: int
    height: int


class FrameRing:
    """A time- and size-bounded buffer of JPEG frames, oldest first."""

    def __init__(self, seconds: float, fps: float, max_bytes: int) -> None:
        if seconds <= 0 or fps <= 0 or max_bytes <= 0:
            raise ValueError("seconds, fps and max_bytes must be positive")
        self.seconds = seconds
        self.period_s = 1.0 / fps
        self.max_bytes = max_bytes
        self.evicted_for_size = 0
        self._frames: deque[RingFrame] = deque()
        self._bytes = 0
        self._next_due = float("-inf")
        self._lock = threading.Lock()

    def due(self, now_mono: float) -> bool:
        """Whether a frame taken now should go into the ring (paces it at `fps`)."""
        with self._lock:
            # A frame a little early (network jitter) still counts, or the rate would halve.
            if now_mono < self._next_due - self.period_s * 0.1:
                return False
            if now_mono - self._next_due > self.period_s:
                self._next_due = now_mono + self.period_s  # first frame, or after a gap: no burst
            else:
                self._next_due += self.period_s  # step from the schedule so the rate does not drift
            return True

    def push(self, frame: RingFrame) -> None:
        with self._lock:
            self._frames.append(frame)
            self._bytes += len(frame.jpeg)
            self._evict(frame.at_mono)

    def window(self, start_mono: float, end_mono: float) -> list[RingFrame]:
        """Frames taken in (start, end], oldest first."""
        with self._lock:
            return [f for f in self._frames if start_mono < f.at_mono <= end_mono]

    def latest(self) -> RingFrame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def _evict(self, now_mono: float) -> None:
        horizon = now_mono - self.seconds
        frames = self._frames
        while frames and frames[0].at_mono < horizon:
            self._bytes -= len(frames.popleft().jpeg)
        # Keep the newest frame even if it alone exceeds the cap: an empty ring helps nobody.
        while len(frames) > 1 and self._bytes > self.max_bytes:
            self._bytes -= len(frames.popleft().jpeg)
            self.evicted_for_size += 1


def scaled_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The ring's frame size: `target_width` wide keeping the aspect, never upscaled.

    0 keeps the stream's size. Heights are kept even because some codecs need it.
    """
    if target_width <= 0 or target_width >= width:
        return width, height
    new_height = max(2, round(height * target_width / width / 2) * 2)
    return target_width, new_height
