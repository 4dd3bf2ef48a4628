"""One CCTV camera: a reader thread over OpenCV, a frame ring, health, snapshots, clips.

Sources are whatever OpenCV's FFmpeg backend opens: `rtsp://` (forced to RTP over TCP,
which survives NAT and lossy site links better than UDP), HTTP MJPEG
(`multipart/x-mixed-replace`, e.g. Axis `/axis-cgi/mjpg/video.cgi`), or a video file
(replayed in a loop at its own frame rate, for demos and tests). Open and read are
bounded by `stream_timeout_s` (`CAP_PROP_OPEN_TIMEOUT_MSEC` / `CAP_PROP_READ_TIMEOUT_MSEC`,
OpenCV videoio docs), so a camera that hangs counts as lost instead of stalling the thread.

A lost stream is retried with capped exponential backoff and full jitter
(devices/reconnect.py); it is logged once when it goes and once when it comes back.
The core never sees any of this: it asks for `snapshot_jpeg()` and `clip()`, and reads
`health()`.

    cam = CctvCamera(camera_config, lane_id="L1")
    cam.start()
    jpeg = cam.snapshot_jpeg()                      # latest frame, full size, or None
    cam.clip(5, 5, on_done=lambda frames: ...)      # returns at once; frames arrive later
    cam.stop()
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, urlsplit, urlunsplit

from edge_agent.config import CameraConfig, LaneConfig
from edge_agent.devices.cctv.ring import FrameRing, RingFrame, scaled_size
from edge_agent.devices.reconnect import Backoff, LinkEvents, LinkLost, ReconnectingWorker

log = logging.getLogger(__name__)

# Frames older than this many nominal frame periods (and at least 2 s) are not "now".
_STALE_PERIODS = 5
FIRST_BACKOFF_S = 0.5
LINK_EVENTS = LinkEvents(connected="cctv_stream_connected", lost="cctv_stream_lost", back="cctv_stream_recovered",
                         failed="cctv_read_loop_failed")

# A reader thread still inside FFmpeg when the interpreter finalises aborts the process;
# cameras nobody stopped are stopped at exit.
_running: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for camera in list(_running):
        camera.stop(timeout_s=2.0)


@dataclass(eq=False)
class ClipRequest:
    """A clip being collected: the frames before are taken at once, the rest by the thread."""

    camera_id: str
    start_mono: float
    requested_mono: float
    end_mono: float
    fps: float
    on_done: Callable[[list[RingFrame]], None] | None = None
    frames: list[RingFrame] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout_s: float | None = None) -> list[RingFrame] | None:
        """The frames once complete, or None if still collecting after `timeout_s`."""
        return self.frames if self.done.wait(timeout_s) else None


class CctvCamera(ReconnectingWorker):
    """A CCTV stream read by one thread into a ring of recent JPEG frames."""

    def __init__(self, camera: CameraConfig, lane_id: str) -> None:
        if not camera.url:
            raise ValueError(f"camera {camera.id}: a CCTV camera needs a url (rtsp://, http://, or a file)")
        self.config = camera
        self.camera_id = camera.id
        self.lane_id = lane_id
        self.url = with_credentials(camera.url, camera.username, camera.password)
        self.display_url = redact(camera.url)
        self.is_file = is_file_source(camera.url)
        self.ring = FrameRing(camera.ring_seconds, camera.ring_fps, camera.ring_max_bytes)
        super().__init__(
            name=f"cctv-{lane_id}-{camera.id}", log=log, events=LINK_EVENTS,
            context=f"camera={camera.id} lane={lane_id} url={self.display_url}",
            backoff=Backoff(base_s=FIRST_BACKOFF_S, cap_s=camera.reconnect_max_s),
        )
        # counters for health() (reconnects and losses are the worker's)
        self.frames = 0
        self.open_failures = 0
        self.replays = 0
        self.ring_encode_failures = 0
        self.clip_callback_failures = 0
        self._fps = 0.0
        self._fps_window_start = 0.0
        self._fps_window_frames = 0
        self._latest: Any = None  # the last decoded frame (numpy array), replaced, never mutated
        self._latest_mono = 0.0
        self._nominal_fps = 0.0
        self._clips: list[ClipRequest] = []
        self._clips_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        _running.add(self)
        return super().start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop reading; clips still collecting complete with the frames they have."""
        _running.discard(self)
        # A read in progress ends within the stream timeout.
        super().stop(timeout_s if timeout_s is not None else self.config.stream_timeout_s + 2.0)
        self._finish_clips(force=True)

    # ------------------------------------------------------------------ what the core uses

    def health(self) -> dict:
        now = time.monotonic()
        age = None if self._latest is None else round(now - self._latest_mono, 3)
        return {
            "camera": self.camera_id,
            "lane": self.lane_id,
            "url": self.display_url,
            "connected": self.connected,  # cleared by the worker when its thread ends
            "fps": round(self._fps, 2),
            "frames": self.frames,
            "reconnects": self.reconnects,
            "losses": self.losses,
            "open_failures": self.open_failures,
            "replays": self.replays,
            "last_frame_age_s": age,
            "ring_frames": len(self.ring),
            "ring_bytes": self.ring.nbytes,
            "ring_encode_failures": self.ring_encode_failures,
            "clip_callback_failures": self.clip_callback_failures,
            **super().health(),
        }

    def snapshot_jpeg(self, quality: int | None = None) -> bytes | None:
        """The latest frame at full size as JPEG, or None when there is no recent frame."""
        import cv2

        frame, at = self._latest, self._latest_mono
        if frame is None or time.monotonic() - at > self._stale_after_s():
            return None
        q = self.config.snapshot_jpeg_quality if quality is None else quality
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, q])
        return buf.tobytes() if ok else None

    def clip(
        self,
        before_s: float | None = None,
        after_s: float | None = None,
        on_done: Callable[[list[RingFrame]], None] | None = None,
    ) -> ClipRequest:
        """Collect ring frames from `before_s` ago to `after_s` from now; returns at once.

        The part after now is gathered by the camera thread, which then calls `on_done`
        with the frames (in that thread: keep it short, e.g. put the frames on a queue).
        Both spans are capped at the ring's length. The span before reaches back at least
        two ring periods, so the clip holds the ring's frame of the moment even when the
        span asked for is shorter than the gap between ring frames.
        """
        before = self.config.clip_before_s if before_s is None else before_s
        before = min(max(before, 2.0 / self.config.ring_fps), self.ring.seconds)
        after = min(self.config.clip_after_s if after_s is None else after_s, self.ring.seconds)
        now = time.monotonic()
        request = ClipRequest(self.camera_id, now - before, now, now + after, self.config.ring_fps, on_done)
        request.frames = self.ring.window(request.start_mono, now)
        with self._clips_lock:
            self._clips.append(request)
        if not self.running or after <= 0:
            self._finish_clips(force=not self.running)
        return request

    # ------------------------------------------------------------------ the reader thread

    def _open(self):
        import cv2

        timeout_ms = int(self.config.stream_timeout_s * 1000)
        if self.url.startswith(("rtsp://", "rtsps://")):
            # OpenCV reads this at each open; RTP over TCP is what works through site firewalls.
            # A site's own options (e.g. "threads;1") are kept.
            options = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS", "")
            if "rtsp_transport" not in options:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join(filter(None, [options, "rtsp_transport;tcp"]))
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        source = self.url.removeprefix("file://")
        try:
            capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
        except cv2.error as err:  # raised for some malformed URLs
            self.open_failures += 1
            raise LinkLost(f"cannot open: {err}") from err
        if not capture.isOpened():
            capture.release()
            self.open_failures += 1
            raise LinkLost("cannot open")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        self._nominal_fps = fps if 0 < fps < 240 else 0.0
        return capture

    def _close(self, capture) -> None:
        capture.release()

    def _serve(self, capture) -> None:
        """Read until stop is asked or a file ends (and is replayed at once); raise when the stream fails."""
        first = True
        # A file is decoded as fast as the CPU allows; pace it like the live camera it stands for.
        period_s = 1.0 / (self._nominal_fps or 10.0) if self.is_file else 0.0
        next_at = time.monotonic()
        while not self._stopping.is_set():
            self._progress()
            ok, frame = capture.read()
            now = time.monotonic()
            if not ok or frame is None:
                if self.is_file and not first:
                    self.replays += 1
                    return
                raise LinkLost("stream ended")
            if first:
                self._link_up()
                first = False
            self._on_frame(frame, now)
            self._finish_clips()
            if period_s:
                next_at = max(next_at + period_s, now - period_s)
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stopping.wait(delay)

    def _on_frame(self, frame, now: float) -> None:
        self.frames += 1
        self._latest, self._latest_mono = frame, now
        self._fps_window_frames += 1
        elapsed = now - self._fps_window_start
        if elapsed >= 1.0:
            self._fps = self._fps_window_frames / elapsed if self._fps_window_start else 0.0
            self._fps_window_start, self._fps_window_frames = now, 0
        if self.ring.due(now):
            self._push_ring(frame, now)

    def _push_ring(self, frame, now: float) -> None:
        import cv2

        height, width = frame.shape[:2]
        size = scaled_size(width, height, self.config.ring_width_px)
        small = frame if size == (width, height) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.config.ring_jpeg_quality])
        if not ok:
            self.ring_encode_failures += 1
            log.warning("cctv_ring_encode_failed camera=%s lane=%s", self.camera_id, self.lane_id)
            return
        self.ring.push(RingFrame(now, datetime.now(UTC), buf.tobytes(), size[0], size[1]))

    def _idle(self, seconds: float) -> None:
        # Sleep in short steps so clips due while the stream is down still complete on time.
        end = time.monotonic() + seconds
        while not self._stopping.is_set():
            self._progress()
            self._finish_clips()
            left = end - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, 0.2))

    def _on_stopped(self) -> None:
        self._finish_clips(force=True)

    def _finish_clips(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._clips_lock:
            due = [c for c in self._clips if force or now >= c.end_mono]
            if not due:
                return
            self._clips = [c for c in self._clips if all(c is not d for d in due)]
        for request in due:
            request.frames = request.frames + self.ring.window(request.requested_mono, request.end_mono)
            request.done.set()
            if request.on_done is None:
                continue
            try:
                request.on_done(request.frames)
            except Exception:
                self.clip_callback_failures += 1
                log.exception("cctv_clip_callback_failed camera=%s lane=%s", self.camera_id, self.lane_id)

    def _stale_after_s(self) -> float:
        fps = self._nominal_fps or self._fps or 1.0
        return max(2.0, _STALE_PERIODS / fps)


def build_cameras(lanes: Iterable[LaneConfig]) -> dict[str, list[CctvCamera]]:
    """One (not yet started) CctvCamera per `kind = "cctv"` camera, by lane id."""
    return {lane.id: [CctvCamera(cam, lane.id) for cam in lane.cameras if cam.kind == "cctv"] for lane in lanes}


def is_file_source(url: str) -> bool:
    return url.startswith("file://") or "://" not in url


def with_credentials(url: str, username: str, password: str) -> str:
    """Put the configured login into a stream URL that does not already carry one."""
    if not username or is_file_source(url):
        return url
    parts = urlsplit(url)
    if parts.username:
        return url
    userinfo = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def redact(url: str) -> str:
    """The URL for logs and health: any password replaced by ***."""
    if is_file_source(url):
        return str(Path(url.removeprefix("file://")))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
