"""Lane events become evidence: a snapshot from each lane camera, a clip for hits.

The core loop calls `on_lane_event` (or hands `SaveEvidence` commands to this object
as an output) and goes on at once: encoding JPEGs, writing files to an SD card and
assembling clips happen in one worker thread here. The frames after the event are
gathered by each camera's own thread (`CctvCamera.clip`), which puts them back on this
worker's queue; a crossing's seal waits for its clips (bounded), so the manifest lists
them. A failure is logged and counted, never raised to the caller.

Clips are Motion-JPEG in AVI written by `cv2.VideoWriter` (FourCC `MJPG`): OpenCV's
FFmpeg build writes MJPG, mp4v, XVID and VP8 but not H.264, and MJPG keeps every frame
a still image a court can be shown.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.devices.cctv.capture import CctvCamera
from edge_agent.devices.cctv.ring import RingFrame
from edge_agent.evidence.manifest import EvidenceStore, Manifest
from edge_agent.ids import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Event:
    lane_id: str
    crossing_id: str
    what: str
    hit: bool


@dataclass(frozen=True)
class _Clip:
    crossing_id: str
    camera_id: str
    what: str
    fps: float
    frames: list[RingFrame]


@dataclass(frozen=True)
class _Bytes:
    crossing_id: str
    kind: str
    name: str
    data: bytes


@dataclass(frozen=True)
class _Seal:
    crossing_id: str
    clock_offset_s: float | None


class EvidenceRecorder:
    """Snapshots and clips of a site's CCTV cameras into an `EvidenceStore`.

        recorder = EvidenceRecorder(store, {"L1": [cam_a, cam_b], "L2": [cam_c]})
        recorder.on_lane_event("L1", crossing_id, "decision", hit=True)   # returns at once
        recorder.seal(crossing_id)                                        # after its clips
        recorder.stop()
    """

    name = "evidence"

    def __init__(
        self,
        store: EvidenceStore,
        cameras: dict[str, list[CctvCamera]],
        *,
        clock_offset: Callable[[], float | None] | None = None,
        queue_size: int = 500,
        on_sealed: Callable[[Manifest], None] | None = None,
    ) -> None:
        self.store = store
        self.cameras = cameras
        self.clock_offset = clock_offset
        self.on_sealed = on_sealed
        self.counts = {
            "events": 0, "snapshots": 0, "snapshots_missing": 0, "clips": 0, "clips_empty": 0,
            "files": 0, "sealed": 0, "failures": 0, "dropped": 0,
            "media_refused": 0,  # pictures and clips the evidence media budget refused (at its cap)
        }
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._clips_pending: dict[str, int] = {}
        self._seals_waiting: dict[str, tuple[float, _Seal]] = {}
        self._state = threading.Lock()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="evidence", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the core's side

    def on_lane_event(self, lane_id: str, crossing_id: str, what: str, hit: bool = False) -> None:
        """Queue snapshots (and, for a hit, clips) of the lane's cameras; never blocks or raises."""
        self._put(_Event(lane_id, crossing_id, what, hit))

    def add_bytes(self, crossing_id: str, kind: str, name: str, data: bytes) -> None:
        """Queue a file for the crossing (an ANPR payload, raw scale frames) off the core thread."""
        self._put(_Bytes(crossing_id, kind, name, bytes(data)))

    def seal(self, crossing_id: str, clock_offset_s: float | None = None) -> None:
        """Queue the crossing's manifest; it is written once the crossing's clips are in."""
        self._put(_Seal(crossing_id, clock_offset_s))

    # OutputBus protocol (edge_agent.outputs): SaveEvidence commands; "end" also seals.
    def accepts(self, command: object) -> bool:
        return getattr(command, "kind", None) == "save_evidence"

    def execute(self, command: object) -> None:
        lane, crossing, moment = command.lane, command.crossing_id, command.moment  # type: ignore[attr-defined]
        self.on_lane_event(lane, crossing, moment, bool(getattr(command, "hit", False)))
        if moment == "end":
            self.seal(crossing)

    def health(self) -> dict:
        with self._state:
            pending = sum(self._clips_pending.values())
            waiting = len(self._seals_waiting)
        return {**self.counts, "queued": self._queue.qsize(), "clips_pending": pending, "seals_waiting": waiting,
                "cameras": {cam.camera_id: cam.health() for cams in self.cameras.values() for cam in cams}}

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued is written and sealed (tests, shutdown)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._state:
                idle = (not self._busy and self._queue.unfinished_tasks == 0
                        and not any(self._clips_pending.values()) and not self._seals_waiting)
            if idle:
                return True
            time.sleep(0.02)
        return False

    def start(self) -> None:
        """Already started by the constructor; kept for the output-worker shape."""

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued (waiting seals go out with the clips they have), then end."""
        self.flush(timeout_s)
        with self._state:
            waiting = [seal for _, seal in self._seals_waiting.values()]
            self._seals_waiting.clear()
        for seal in waiting:
            self._do_seal(seal)
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=1.0)
        self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the worker

    def _put(self, job: object) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.counts["dropped"] += 1
            log.warning("evidence_queue_full job=%s crossing=%s", type(job).__name__.strip("_").lower(),
                        getattr(job, "crossing_id", ""))
        except Exception:  # never let evidence break the caller
            self.counts["failures"] += 1
            log.exception("evidence_enqueue_failed")

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=0.2)
            except queue.Empty:
                self._release_seals()
                continue
            if job is None:
                self._queue.task_done()
                return
            with self._state:
                self._busy = True
            try:
                self._handle(job)
            except Exception:
                self.counts["failures"] += 1
                log.exception("evidence_job_failed job=%s crossing=%s", type(job).__name__.strip("_").lower(),
                              getattr(job, "crossing_id", ""))
            finally:
                with self._state:
                    self._busy = False
                self._queue.task_done()
            self._release_seals()

    def _handle(self, job: object) -> None:
        if isinstance(job, _Event):
            self._on_event(job)
        elif isinstance(job, _Clip):
            try:
                self._write_clip(job)
            finally:
                with self._state:
                    self._clips_pending[job.crossing_id] -= 1
        elif isinstance(job, _Bytes):
            self.store.add_file(job.crossing_id, job.kind, job.name, job.data)
            self.counts["files"] += 1
        elif isinstance(job, _Seal):
            with self._state:
                pending = self._clips_pending.get(job.crossing_id, 0)
                if pending:
                    self._seals_waiting[job.crossing_id] = (time.monotonic() + self._clip_wait_s(), job)
                    return
            self._do_seal(job)

    def _on_event(self, event: _Event) -> None:
        self.counts["events"] += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for cam in self.cameras.get(event.lane_id, []):
            try:
                jpeg = cam.snapshot_jpeg()
            except Exception:
                self.counts["failures"] += 1
                log.exception("evidence_snapshot_failed camera=%s crossing=%s", cam.camera_id, event.crossing_id)
                jpeg = None
            if jpeg is None:
                self.counts["snapshots_missing"] += 1
                log.warning("evidence_snapshot_missing camera=%s lane=%s crossing=%s what=%s",
                            cam.camera_id, event.lane_id, event.crossing_id, event.what)
            else:
                try:
                    written = self.store.add_file(event.crossing_id, "snapshot",
                                                  f"{event.what}_{cam.camera_id}_{stamp}.jpg", jpeg)
                    self.counts["snapshots" if written is not None else "media_refused"] += 1
                except OSError as err:  # a full or failing SD card: the other cameras still get their turn
                    self.counts["failures"] += 1
                    log.error("evidence_write_failed camera=%s crossing=%s error=%s", cam.camera_id,
                              event.crossing_id, err)
            if event.hit:
                self._request_clip(cam, event)

    def _request_clip(self, cam: CctvCamera, event: _Event) -> None:
        with self._state:
            self._clips_pending[event.crossing_id] = self._clips_pending.get(event.crossing_id, 0) + 1

        def done(frames: list[RingFrame]) -> None:
            # Runs in the camera's thread: only hand the frames over, never block it for long.
            try:
                self._queue.put(_Clip(event.crossing_id, cam.camera_id, event.what, cam.config.ring_fps, frames),
                                timeout=2.0)
            except queue.Full:
                with self._state:
                    self._clips_pending[event.crossing_id] -= 1
                self.counts["dropped"] += 1
                log.warning("evidence_queue_full job=clip crossing=%s camera=%s", event.crossing_id, cam.camera_id)

        try:
            cam.clip(on_done=done)
        except Exception:
            with self._state:
                self._clips_pending[event.crossing_id] -= 1
            raise

    def _write_clip(self, clip: _Clip) -> None:
        if not clip.frames:
            self.counts["clips_empty"] += 1
            log.warning("evidence_clip_empty camera=%s crossing=%s what=%s", clip.camera_id, clip.crossing_id,
                        clip.what)
            return
        if not self.store.admits("clip"):  # the media budget is at its cap: not even encoded
            self.counts["media_refused"] += 1
            return
        scratch = self.store.scratch_dir() / f"{new_id()}.avi"
        try:
            written = write_clip(clip.frames, scratch, clip.fps)
            if written == 0:
                self.counts["clips_empty"] += 1
                log.warning("evidence_clip_unwritable camera=%s crossing=%s frames=%s", clip.camera_id,
                            clip.crossing_id, len(clip.frames))
                return
            start = clip.frames[0].at_utc.strftime("%Y%m%dT%H%M%S%fZ")
            kept = self.store.add_path(clip.crossing_id, "clip", f"{clip.what}_{clip.camera_id}_{start}.avi",
                                       scratch)
            self.counts["clips" if kept is not None else "media_refused"] += 1
        finally:
            scratch.unlink(missing_ok=True)

    def _release_seals(self) -> None:
        now = time.monotonic()
        ready = []
        with self._state:
            for crossing, (deadline, seal) in list(self._seals_waiting.items()):
                if self._clips_pending.get(crossing, 0) == 0 or now >= deadline:
                    if self._clips_pending.get(crossing, 0):
                        log.warning("evidence_seal_without_clips crossing=%s missing=%s", crossing,
                                    self._clips_pending[crossing])
                    ready.append(seal)
                    del self._seals_waiting[crossing]
            if ready:
                self._busy = True  # flush() must not see idle between the pop and the write
        try:
            for seal in ready:
                try:
                    self._do_seal(seal)
                except Exception:
                    self.counts["failures"] += 1
                    log.exception("evidence_seal_failed crossing=%s", seal.crossing_id)
        finally:
            if ready:
                with self._state:
                    self._busy = False

    def _do_seal(self, seal: _Seal) -> None:
        offset = seal.clock_offset_s
        if offset is None and self.clock_offset is not None:
            offset = self.clock_offset()
        manifest = self.store.seal(seal.crossing_id, clock_offset_s=offset)
        self.counts["sealed"] += 1
        with self._state:
            if not self._clips_pending.get(seal.crossing_id):
                self._clips_pending.pop(seal.crossing_id, None)
        if self.on_sealed is not None:
            try:
                self.on_sealed(manifest)
            except Exception:
                log.exception("evidence_on_sealed_failed crossing=%s", seal.crossing_id)

    def _clip_wait_s(self) -> float:
        cams = [cam for cams in self.cameras.values() for cam in cams]
        if not cams:
            return 1.0
        return max(c.config.clip_after_s + c.config.stream_timeout_s for c in cams) + 5.0


def write_clip(frames: list[RingFrame], path: Path, fps: float) -> int:
    """Write ring frames as an MJPG AVI; returns how many frames went in (0: none could)."""
    import cv2

    writer = None
    size = None
    written = 0
    try:
        for frame in frames:
            image = cv2.imdecode(_as_array(frame.jpeg), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("evidence_clip_frame_undecodable path=%s", path.name)
                continue
            if writer is None:
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), max(fps, 0.5), size)
                if not writer.isOpened():
                    return 0
            if (image.shape[1], image.shape[0]) != size:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)  # the stream changed resolution
            writer.write(image)
            written += 1
    finally:
        if writer is not None:
            writer.release()
    return written


def _as_array(data: bytes):
    import numpy as np

    return np.frombuffer(data, dtype=np.uint8)
