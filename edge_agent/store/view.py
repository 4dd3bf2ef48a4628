"""`StoreView`: a read-only window on the agent's database for other threads.

The console's request threads, its live streams and the demo all read through one
view. It opens its read-only connection when the database first exists (the console
may start before the core's first commit), serialises its threads on one lock (a
connection's cursors are not for two threads at once), and answers an empty result
while there is no database yet. It has no method that writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.errors import StoreError
from edge_agent.store.outbox import OutboxRow
from edge_agent.store.store import Store

T = TypeVar("T")


class StoreView:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store: Store | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def available(self) -> bool:
        """True once the database exists and could be opened."""
        return self._read(lambda s: True, False)

    # ------------------------------------------------------------------ crossings

    def crossings(self, limit: int = 50, lane: str | None = None) -> list[dict[str, Any]]:
        return self._read(lambda s: s.crossings(limit, lane), [])

    def crossing_lane(self, crossing_id: str) -> str | None:
        return self._read(lambda s: s.crossing_lane(crossing_id), None)

    def latest_assessment(self, crossing_id: str) -> dict[str, Any] | None:
        return self._read(lambda s: s.latest_assessment(crossing_id), None)

    def hits_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return self._read(lambda s: s.hits_for(crossing_id), [])

    def commands_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return self._read(lambda s: s.commands_for(crossing_id), [])

    def control_acts_of_lane(self, lane: str, limit: int = 5) -> list[dict[str, Any]]:
        return self._read(lambda s: s.control_acts_of_lane(lane, limit), [])

    def pending_rechannels(self, lane: str | None = None) -> list[dict[str, Any]]:
        return self._read(lambda s: s.pending_rechannels(lane), [])

    def decided_rechannels(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._read(lambda s: s.decided_rechannels(limit), [])

    def rechannel(self, request_id: str) -> dict[str, Any] | None:
        return self._read(lambda s: s.rechannel(request_id), None)

    # ------------------------------------------------------------------ figures

    def channel_counts(self) -> dict[str, int]:
        return self._read(lambda s: s.channel_counts(), {})

    def hit_counts(self) -> list[tuple[str, str, int]]:
        return self._read(lambda s: s.hit_counts(), [])

    def control_act_counts(self) -> dict[str, int]:
        return self._read(lambda s: s.control_act_counts(), {})

    def all_hits(self) -> list[dict[str, Any]]:
        return self._read(lambda s: s.all_hits(), [])

    def all_assessment_channels(self) -> list[dict[str, Any]]:
        return self._read(lambda s: s.all_assessment_channels(), [])

    def all_control_results(self) -> list[dict[str, Any]]:
        return self._read(lambda s: s.all_control_results(), [])

    def rules_in_force_at(self, at: datetime) -> tuple[str, list[dict[str, Any]]] | None:
        return self._read(lambda s: s.rules_in_force_at(at), None)

    def latest_audit_anchor(self) -> dict[str, Any] | None:
        return self._read(lambda s: s.latest_audit_anchor(), None)

    # ------------------------------------------------------------------ outbox

    def outbox_count(self) -> int | None:
        """Events waiting for the hub's acknowledgement; None when there is no database yet."""
        return self._read(lambda s: s.outbox_count(), None)

    def outbox_oldest_at(self) -> str:
        """When the oldest unsent event was queued ("" with none)."""
        return self._read(lambda s: s.outbox_oldest_at(), "")

    # ------------------------------------------------------------------ holds

    def held_count(self) -> int:
        """Crossings on hold (automatic and manual)."""
        return self._read(lambda s: s.held_count(), 0)

    def holds(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._read(lambda s: s.holds(limit), [])

    def hold_of(self, crossing_id: str) -> dict[str, Any] | None:
        return self._read(lambda s: s.hold_of(crossing_id), None)

    def on_hold(self, crossing_id: str) -> bool:
        return self._read(lambda s: s.on_hold(crossing_id), False)

    def flagged_reasons(self, crossing_id: str) -> list[str]:
        return self._read(lambda s: s.flagged_reasons(crossing_id), [])

    def outbox_payloads(self, stream: str | None = None) -> list[dict[str, Any]]:
        return self._read(lambda s: s.outbox_payloads(stream), [])

    def outbox_after(self, seq: int, limit: int = 500) -> list[OutboxRow]:
        return self._read(lambda s: s.outbox_after(seq, limit=limit), [])

    # ------------------------------------------------------------------ plumbing

    def _read(self, query: Callable[[Store], T], default: T) -> T:
        with self._lock:
            if self._store is None:
                try:
                    self._store = Store.reader(self.path)
                except StoreError:
                    return default
            return query(self._store)
