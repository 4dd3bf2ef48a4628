"""The non-camera evidence of a crossing: ANPR payloads, plate crops and raw scale frames.

Devices hand their bytes over as they arrive, before the core knows which crossing they
belong to; they wait here per lane and go to the recorder with the lane's next evidence
moment (arrival, weighed, decision ...), so they are in the crossing's manifest when the
"end" moment seals it. Buffers are bounded: a camera pushing without trucks cannot fill
the memory, and what is dropped is counted.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from typing import Any

log = logging.getLogger(__name__)

MAX_ITEMS_PER_LANE = 32


class CrossingEvidenceFeed:
    """An output (edge_agent.outputs) in front of an EvidenceRecorder."""

    name = "evidence"

    def __init__(self, recorder: Any, max_items: int = MAX_ITEMS_PER_LANE) -> None:
        self.recorder = recorder
        self._waiting: dict[str, deque] = defaultdict(lambda: deque(maxlen=max_items))
        self._lock = threading.Lock()
        self.counts = {"buffered": 0, "dropped": 0, "handed_over": 0}

    # device side: any thread
    def anpr_payload(self, lane: str, camera: str, read_id: str, content_type: str, body: bytes) -> None:
        suffix = "xml" if "xml" in content_type else "json" if "json" in content_type else "bin"
        self._keep(lane, "anpr", f"{camera}-{read_id}.{suffix}", body)

    def anpr_image(self, lane: str, camera: str, read_id: str, kind: str, jpeg: bytes) -> None:
        self._keep(lane, "anpr", f"{camera}-{read_id}-{kind}.jpg", jpeg)

    def scale_frames(self, lane: str, event_id: str, frames_hex: list[str]) -> None:
        text = "\n".join(frames_hex).encode("ascii") + b"\n"
        self._keep(lane, "scale", f"{event_id}.hex", text)

    def _keep(self, lane: str, kind: str, name: str, data: bytes) -> None:
        with self._lock:
            waiting = self._waiting[lane]
            if len(waiting) == waiting.maxlen:
                self.counts["dropped"] += 1
                log.warning("evidence_feed_dropped lane=%s name=%s reason=buffer full", lane, waiting[0][1])
            waiting.append((kind, name, bytes(data)))
            self.counts["buffered"] += 1

    # output side: the OutputBus worker
    def accepts(self, command: object) -> bool:
        return self.recorder.accepts(command)

    def execute(self, command: Any) -> None:
        with self._lock:
            items = list(self._waiting.pop(command.lane, ()))
        for kind, name, data in items:
            self.recorder.add_bytes(command.crossing_id, kind, name, data)
        self.counts["handed_over"] += len(items)
        self.recorder.execute(command)

    def health(self) -> dict:
        return {**self.recorder.health(), "feed": dict(self.counts)}

    def stop(self) -> None:
        self.recorder.stop()
