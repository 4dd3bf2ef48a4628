"""When a stream of readings becomes one weighing: a pure rule, the caller passes the time.

A weighing is captured when, after a zero check:

- the indicator reports no motion (where its format can say so);
- at least `stable_readings` readings in a row lie within one division of each other,
- spanning at least `stable_window_s` seconds (many formats carry no motion flag, and a
  truck rocking on its suspension can look still for a frame or two);
- none of them is out of range, negative, net without a known tare, or below
  `min_weight_kg`.

The zero check: a weighing is only taken after the scale has been seen empty (within
`zero_band_kg` of zero), so a truck already on the bridge when the agent starts, or a
scale with a drifted zero under a load, never produces a weight. Once a weighing is
captured, the next one needs the bridge to empty first; `Emptied` reports that moment.
Both the zero check and `Emptied` need `stable_readings` frames in a row in the zero
band, so a single garbled frame that happens to read 0 does neither.
The captured value is the middle of the window (`median_low`, so always a value the
indicator actually displayed).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median_low

from edge_agent.devices.scale.frame import WeightFrame


@dataclass(frozen=True)
class Captured:
    gross_kg: float
    raw_frames: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class Emptied:
    pass


@dataclass(frozen=True)
class StabilityRule:
    division_kg: float = 20.0
    min_weight_kg: float = 1000.0
    zero_band_kg: float = 100.0
    stable_readings: int = 5
    stable_window_s: float = 1.5
    evidence_frames: int = 50  # raw frames kept with a weighing, the latest ones

    @classmethod
    def from_config(cls, config) -> StabilityRule:
        return cls(
            division_kg=config.division_kg,
            min_weight_kg=config.min_weight_kg,
            zero_band_kg=config.zero_band_kg,
            stable_readings=config.stable_readings,
            stable_window_s=config.stable_window_s,
        )


class StabilityDetector:
    """Feed readings with their monotonic time; get `Captured` / `Emptied` back."""

    def __init__(self, rule: StabilityRule) -> None:
        self.rule = rule
        self.zero_seen = False  # the zero check has passed since the last weighing
        self.captured: float | None = None  # the current load's weighing
        self.loaded = False  # something at or above the minimum was on the bridge
        self._window: deque[tuple[float, float, bytes]] = deque()
        self._zero_run = 0

    def reset_window(self) -> None:
        """Forget the readings in progress (the line dropped: a gap is not stillness)."""
        self._window.clear()

    def update(self, reading: WeightFrame, now_s: float) -> list[Captured | Emptied]:
        rule = self.rule
        gross = reading.gross_kg
        if reading.out_of_range or gross is None:
            self._window.clear()
            return []
        if abs(gross) <= rule.zero_band_kg:
            self._window.clear()
            # One frame near zero is not an empty bridge: a frame that lost digits on the
            # line can read 0. The zero band must hold for stable_readings frames.
            self._zero_run += 1
            if self._zero_run < rule.stable_readings:
                return []
            self.zero_seen = True
            if self.captured is not None or self.loaded:
                self.captured = None
                self.loaded = False
                return [Emptied()]
            return []
        self._zero_run = 0
        if gross >= rule.min_weight_kg:
            self.loaded = True
        if gross < rule.min_weight_kg or reading.stable is False:
            self._window.clear()
            return []
        window = self._window
        window.append((now_s, gross, reading.raw))
        high, low = max(v for _, v, _ in window), min(v for _, v, _ in window)
        while high - low > rule.division_kg + 1e-9:
            window.popleft()
            high, low = max(v for _, v, _ in window), min(v for _, v, _ in window)
        # Only the latest stable_window_s are needed: keeps a parked truck's window small.
        while len(window) > rule.stable_readings and now_s - window[1][0] >= rule.stable_window_s:
            window.popleft()
        if not self.zero_seen or self.captured is not None:
            return []
        if len(window) < rule.stable_readings or now_s - window[0][0] < rule.stable_window_s:
            return []
        value = median_low(v for _, v, _ in window)
        frames = [raw for _, _, raw in window][-rule.evidence_frames:]
        self.captured = value
        self.zero_seen = False
        window.clear()
        return [Captured(value, frames)]
