"""Evidence on demand, the site's side: on the RAU's `evidence_request` command, send the
crossing's chain proof and file list, then the files in chunks (docs/sync.md, "Evidence
on demand").

Thread: its own (`evidence-upload`): it reads manifests and files, which the core's
thread must never wait for. It sends only while the outbox is idle (connected, no
backlog being drained, nothing unacknowledged: `idle()`), one chunk at a time, within
`sync.evidence_rate_bytes_per_s` (a token bucket of one chunk), so live traffic and the
outbox drain always go first.

Resumable: chunks are idempotent by (file SHA-256, index). The hub answers each message
on `down/evidence_ack` with the indexes it holds; the uploader sends only the others,
and sends again what is not acknowledged within `sync.resend_timeout_s`. A request asked
again (after a restart of the site, say) resumes where the hub's answer says.

    uploader = EvidenceUploader("bcp-a", root, plan, publish, idle, rate_bytes_per_s=32768)
    uploader.start(); uploader.request("01J...", "01J-crossing"); ...; uploader.stop()
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.ids import new_id
from edge_agent.sync import topics

log = logging.getLogger(__name__)

MAX_REQUESTS = 100  # queued requests beyond this are refused (logged, counted)
WINDOW = 8  # chunks unacknowledged at once


@dataclass
class _File:
    path: str
    sha256: str
    size: int
    count: int
    acked: set[int] = field(default_factory=set)
    sent_at: dict[int, float] = field(default_factory=dict)


@dataclass
class _Request:
    request: str
    crossing_id: str
    lane: str = ""  # a CCTV snapshot's lane (then crossing_id is empty)
    plan: dict[str, Any] | None = None
    manifest_sent_at: float | None = None
    accepted: bool = False
    files: list[_File] = field(default_factory=list)


class EvidenceUploader:
    def __init__(self, site: str, root: Path, plan: Callable[[str], dict[str, Any] | None],
                 publish: Callable[[str, bytes], bool], idle: Callable[[], bool], *,
                 rate_bytes_per_s: float = 32768, chunk_bytes: int = 64 * 1024, resend_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 snapshot_source: Callable[[str], tuple[str, bytes] | None] | None = None) -> None:
        self.site = site
        self.root = Path(root)
        self.plan = plan
        self.publish = publish
        self.idle = idle
        self.rate = float(rate_bytes_per_s)
        self.chunk_bytes = int(chunk_bytes)
        self.resend_timeout_s = resend_timeout_s
        self.clock = clock
        # A lane's latest CCTV frame as (camera id, JPEG), or None: the RAU's snapshot on demand.
        self.snapshot_source = snapshot_source
        self.counters: Counter[str] = Counter()
        self._requests: list[_Request] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens = float(self.chunk_bytes)
        self._filled_at = clock()
        self.heartbeat: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ called from the sync thread

    def request(self, request_id: str, crossing_id: str) -> None:
        with self._lock:
            if any(r.request == request_id for r in self._requests):
                return  # a QoS 1 duplicate
            if len(self._requests) >= MAX_REQUESTS or not crossing_id:
                self.counters["requests_refused"] += 1
                log.warning("evidence_request_refused id=%s crossing=%s reason=%s", request_id, crossing_id,
                            "no crossing_id" if not crossing_id else "too many requests queued")
                return
            self._requests.append(_Request(request_id, crossing_id))
            self.counters["requests"] += 1
        log.info("evidence_request id=%s crossing=%s", request_id, crossing_id)
        self._wake.set()

    def snapshot(self, request_id: str, lane: str) -> None:
        """The RAU asks for a lane's latest CCTV frame: sent ahead of evidence uploads."""
        with self._lock:
            if any(r.request == request_id for r in self._requests):
                return
            if len(self._requests) >= MAX_REQUESTS:
                self.counters["requests_refused"] += 1
                log.warning("cctv_snapshot_refused id=%s lane=%s reason=too many requests queued", request_id, lane)
                return
            self._requests.append(_Request(request_id, "", lane=lane))
            self.counters["snapshots"] += 1
        log.info("cctv_snapshot_request id=%s lane=%s", request_id, lane)
        self._wake.set()

    def acked(self, payload: bytes) -> None:
        """The hub's `down/evidence_ack`: what it holds of a request's files."""
        try:
            body = json.loads(payload)
            request, have = str(body["request"]), body.get("have") or {}
            refused = set(body.get("refused") or [])
            if not isinstance(have, dict):
                raise TypeError("have is not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            self.counters["acks_rejected"] += 1
            log.warning("evidence_ack_rejected reason=%s", err)
            return
        with self._lock:
            found = next((r for r in self._requests if r.request == request), None)
            if found is None:
                return
            if body.get("manifest") == "refused":
                self._requests.remove(found)
                self.counters["requests_refused_by_hub"] += 1
                log.warning("evidence_request_refused_by_hub id=%s crossing=%s", request, found.crossing_id)
                return
            if body.get("manifest") == "accepted":
                found.accepted = True
            for item in found.files:
                item.acked.update(i for i in have.get(item.sha256, []) if isinstance(i, int))
                if item.sha256 in refused:
                    item.acked.update(range(item.count))  # the hub will not take it: stop sending
                    self.counters["files_refused_by_hub"] += 1
        self._wake.set()

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {"requests_open": len(self._requests), **self.counters}

    # ------------------------------------------------------------------ the thread

    @property
    def thread_name(self) -> str:
        return "evidence-upload"

    def watched(self) -> dict[str, float]:
        return {self.thread_name: 60.0}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat(self.thread_name)
            try:
                wait_s = self._step()
            except Exception:  # noqa: BLE001 - one bad request must not end the uploads
                self.counters["errors"] += 1
                log.exception("evidence_upload_failed")
                wait_s = 1.0
            self._wake.wait(wait_s)
            self._wake.clear()

    def _step(self) -> float:
        """Send what is due of the oldest open request; how long to wait before the next step."""
        with self._lock:
            # A snapshot is a live view: it goes before the files of any crossing.
            current = next((r for r in self._requests if r.lane), self._requests[0] if self._requests else None)
        if current is None:
            return 1.0
        if current.plan is None:
            self._prepare(current)
            if current.plan is None:
                return 0.0
        now = self.clock()
        if not current.accepted:
            if current.manifest_sent_at is None or now - current.manifest_sent_at >= self.resend_timeout_s:
                if not self.idle():
                    return 0.05
                if current.lane:
                    wait_s = self._take_tokens(len(current.plan.get("data", "")) * 3 // 4)
                    if wait_s > 0:
                        return wait_s
                stream = "cctv_snapshot" if current.lane else "evidence_manifest"
                if self._send(current.request, stream, current.plan):
                    current.manifest_sent_at = now
            return 0.2
        due = self._next_chunk(current, now)
        if due is None:
            if all(len(f.acked) >= f.count for f in current.files):
                with self._lock:
                    self._requests.remove(current)
                self.counters["requests_done"] += 1
                log.info("evidence_upload_done id=%s crossing=%s lane=%s files=%d", current.request,
                         current.crossing_id, current.lane, len(current.files))
                return 0.0
            return 0.2  # waiting for acknowledgements
        item, index = due
        if not self.idle():
            return 0.05  # live traffic and the outbox drain first
        wait_s = self._take_tokens(min(self.chunk_bytes, item.size - index * self.chunk_bytes))
        if wait_s > 0:
            return wait_s
        data = self._read(item, index)
        if data is None:
            item.acked.update(range(item.count))  # gone meanwhile (retention): the hub keeps its partial state
            return 0.0
        body = {"crossing_id": current.crossing_id, "sha256": item.sha256, "index": index, "count": item.count,
                "data": base64.b64encode(data).decode("ascii")}
        if self._send(current.request, "evidence_chunk", body):
            if index in item.sent_at:
                self.counters["chunks_resent"] += 1
            item.sent_at[index] = now
            self.counters["chunks_sent"] += 1
            self.counters["bytes_sent"] += len(data)
        return 0.0

    def _prepare(self, current: _Request) -> None:
        if current.lane:
            found = self.snapshot_source(current.lane) if self.snapshot_source is not None else None
            if found is None:
                current.plan = {"lane": current.lane, "error": "no recent frame from a CCTV camera of this lane"}
            else:
                camera, jpeg = found
                current.plan = {"lane": current.lane, "camera": camera, "taken_at": datetime.now(UTC).isoformat(),
                                "data": base64.b64encode(jpeg).decode("ascii")}
            return
        try:
            plan = self.plan(current.crossing_id)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            # A manifest this site cannot read: the RAU hears why, and the queue goes on.
            self.counters["plans_failed"] += 1
            log.warning("evidence_plan_failed crossing=%s error=%r", current.crossing_id, err)
            current.plan = {"crossing_id": current.crossing_id, "error": f"the site cannot read its manifests: {err!r}"}
            return
        if plan is None:
            current.plan = {"crossing_id": current.crossing_id, "error": "no manifest of this site names the crossing"}
            return
        current.plan = {**plan, "chunk_bytes": self.chunk_bytes}
        current.files = [_File(f["path"], f["sha256"], int(f["size"]), -(-int(f["size"]) // self.chunk_bytes))
                         for f in plan["files"] if f["state"] == "present"]

    def _next_chunk(self, current: _Request, now: float) -> tuple[_File, int] | None:
        unacked = sum(1 for f in current.files for i, t in f.sent_at.items() if i not in f.acked)
        for item in current.files:
            for index in range(item.count):
                if index in item.acked:
                    continue
                sent = item.sent_at.get(index)
                if sent is None and unacked < WINDOW:
                    return item, index
                if sent is not None and now - sent >= self.resend_timeout_s:
                    return item, index
        return None

    def _take_tokens(self, size: int) -> float:
        now = self.clock()
        self._tokens = min(float(max(self.chunk_bytes, size)), self._tokens + (now - self._filled_at) * self.rate)
        self._filled_at = now
        if self._tokens < size:
            return (size - self._tokens) / self.rate
        self._tokens -= size
        return 0.0

    def _read(self, item: _File, index: int) -> bytes | None:
        target = (self.root / item.path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            return None
        try:
            with open(target, "rb") as f:
                f.seek(index * self.chunk_bytes)
                return f.read(self.chunk_bytes)
        except OSError as err:
            self.counters["read_failed"] += 1
            log.warning("evidence_read_failed path=%s error=%s", item.path, err)
            return None

    def _send(self, request: str, stream: str, body: dict[str, Any]) -> bool:
        message = {"id": new_id(), "stream": stream, "site": self.site, "request": request, **body}
        return self.publish(topics.up(self.site, stream), json.dumps(message, separators=(",", ":")).encode())
