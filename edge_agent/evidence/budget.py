"""The disk budget of evidence media: how much pictures and clips may take.

`MediaBudget` counts the media bytes on disk (recounted by the retention worker's scan,
kept current in between by the evidence store's writes and the worker's purges), so the
evidence store asks it before every media file at O(1) cost:

    ok        below `high_water_pct` of the cap
    high      past the high-water mark: the retention worker is woken to purge the oldest
              media not on hold ahead of its period (reason "budget")
    critical  at or past the cap: no new media is written (`admit` says no, counted);
              raw payloads and the database's event records still are

The state is logged once per change, never per refused file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

OK, HIGH, CRITICAL = "ok", "high", "critical"


class MediaBudget:
    """Thread-safe: the evidence worker adds, the retention worker removes and recounts."""

    def __init__(self, cap_bytes: int, high_water_pct: float = 90.0,
                 on_high_water: Callable[[], None] | None = None) -> None:
        self.cap_bytes = max(0, int(cap_bytes))
        self.high_water_pct = high_water_pct
        self.on_high_water = on_high_water
        self.used_bytes = 0
        self.refused = 0  # media files not written because the cap was reached
        self.state = OK
        self._lock = threading.Lock()

    @property
    def high_water_bytes(self) -> int:
        return int(self.cap_bytes * self.high_water_pct / 100)

    def admit(self) -> bool:
        """May a media file be written now? False (counted) while critical."""
        with self._lock:
            if self.state == CRITICAL:
                self.refused += 1
                return False
            return True

    def add(self, size: int) -> None:
        with self._lock:
            self.used_bytes += size
            self._settle()

    def remove(self, size: int) -> None:
        with self._lock:
            self.used_bytes = max(0, self.used_bytes - size)
            self._settle()

    def recount(self, used_bytes: int) -> None:
        """The media bytes a scan found on disk: the count starts again from the truth."""
        with self._lock:
            self.used_bytes = max(0, int(used_bytes))
            self._settle()

    def snapshot(self) -> dict[str, int | str | float]:
        with self._lock:
            return {"state": self.state, "used_bytes": self.used_bytes, "cap_bytes": self.cap_bytes,
                    "high_water_bytes": self.high_water_bytes, "refused": self.refused,
                    "used_pct": round(100.0 * self.used_bytes / self.cap_bytes, 1) if self.cap_bytes else 0.0}

    def _settle(self) -> None:
        # Called with the lock held.
        if self.cap_bytes <= 0:
            state = OK
        elif self.used_bytes >= self.cap_bytes:
            state = CRITICAL
        elif self.used_bytes >= self.high_water_bytes:
            state = HIGH
        else:
            state = OK
        if state == self.state:
            return
        before, self.state = self.state, state
        mb = 2**20
        if state == CRITICAL:
            log.error("evidence_budget_critical used_mb=%.1f cap_mb=%.1f: no new media is written until the "
                      "oldest is purged; events are still stored", self.used_bytes / mb, self.cap_bytes / mb)
        elif state == HIGH:
            log.warning("evidence_budget_high used_mb=%.1f high_water_mb=%.1f cap_mb=%.1f: purging the oldest "
                        "media not on hold", self.used_bytes / mb, self.high_water_bytes / mb, self.cap_bytes / mb)
        else:
            log.info("evidence_budget_ok used_mb=%.1f cap_mb=%.1f was=%s", self.used_bytes / mb,
                     self.cap_bytes / mb, before)
        if state != OK and self.on_high_water is not None:
            self.on_high_water()
