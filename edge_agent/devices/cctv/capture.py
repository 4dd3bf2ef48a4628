"""One CCTV camera: a reader thread over OpenCV, a frame ring, health, snapshots, clips.

Sources are whatever OpenCV's FFmpeg backend opens: `rtsp://` (forced to RTP over TCP,
which survives NAT and lossy site links better than UDP), HTTP MJPEG
(`multipart/x-mixed-replace`, e.g. Axis `/axis-cgi/mjpg/video.cgi`), or a video file
(replayed in a loop at its own frame rate, for demos and tests). Open and read are
bounded by `stream_timeout_s` (`CAP_PROP_OPEN_TIMEOUT_MSEC` / `CAP_PROP_READ_TIMEOUT_MSEC`,
OpenCV videoio docs), so a camera that hangs counts as lost instead of stalling the thread.

A lost stream is retried with capped exponential backoff and jitter; it is logged once
when it goes and once when it comes back. The core never sees any of this: it asks for
`snapshot_jpeg()` and `clip()`, and reads `health()`.

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
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from edge_agent.config import CameraConfig, LaneConfig
from edge_agent.devices.cctv.ring import FrameRing, RingFrame, scaled_size

log = logging.getLogger(__name__)

# Frames older than this many nominal frame periods (and at least 2 s) are not "now".
_STALE_PERIODS = 5

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


class CctvCamera:
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
        # counters for health()
        self.frames = 0
        self.reconnects = 0
        self.losses = 0
        self.open_failures = 0
        self.replays = 0
        self.ring_encode_failures = 0
        self.clip_callback_failures = 0
        self._fps = 0.0
        self._fps_window_start = 0.0
        self._fps_window_frames = 0
        self._latest: Any = None  # the last decoded frame (numpy array), replaced, never mutated
        self._latest_mono = 0.0
        self._connected = False
        self._lost_since: float | None = None
        self._nominal_fps = 0.0
        self._clips: list[ClipRequest] = []
        self._clips_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"cctv-{self.lane_id}-{self.camera_id}", daemon=True)
        self._thread.start()
        _running.add(self)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop reading; clips still collecting complete with the frames they have."""
        self._stopping.set()
        _running.discard(self)
        if self._thread is not None:
            # A read in progress ends within the stream timeout.
            self._thread.join(timeout_s if timeout_s is not None else self.config.stream_timeout_s + 2.0)
        self._finish_clips(force=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ what the core uses

    def health(self) -> dict:
        now = time.monotonic()
        age = None if self._latest is None else round(now - self._latest_mono, 3)
        return {
            "camera": self.camera_id,
            "lane": self.lane_id,
            "url": self.display_url,
            "connected": self._connected and self.running,
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

    def _run(self) -> None:
        backoff_s = 0.5
        while not self._stopping.is_set():
            try:
                capture = self._open()
            except Exception as err:  # OpenCV raises cv2.error for some bad URLs
                log.debug("cctv_open_error camera=%s error=%s", self.camera_id, err)
                capture = None
            if capture is None:
                self.open_failures += 1
                self._mark_lost("cannot open")
                self._wait(backoff_s * random.uniform(0.8, 1.2))
                backoff_s = min(backoff_s * 2, self.config.reconnect_max_s)
                continue
            try:
                ended_cleanly = self._read_loop(capture)
            except Exception:
                # A bug in here must not end the camera for good: log it and reconnect.
                log.exception("cctv_read_loop_failed camera=%s lane=%s", self.camera_id, self.lane_id)
                ended_cleanly = False
            finally:
                capture.release()
            if self._stopping.is_set():
                break
            if ended_cleanly:
                backoff_s = 0.5  # a file reached its end: replay from the start at once
                continue
            if self._connected:
                backoff_s = 0.5  # it worked until now: the first retry is quick again
            self._mark_lost("stream ended")
            self._wait(backoff_s * random.uniform(0.8, 1.2))
            backoff_s = min(backoff_s * 2, self.config.reconnect_max_s)
        self._connected = False
        self._finish_clips(force=True)

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
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            return None
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        self._nominal_fps = fps if 0 < fps < 240 else 0.0
        return capture

    def _read_loop(self, capture) -> bool:
        """Read until the stream fails (False), a file ends (True) or stop is asked."""
        first = True
        # A file is decoded as fast as the CPU allows; pace it like the live camera it stands for.
        period_s = 1.0 / (self._nominal_fps or 10.0) if self.is_file else 0.0
        next_at = time.monotonic()
        while not self._stopping.is_set():
            ok, frame = capture.read()
            now = time.monotonic()
            if not ok or frame is None:
                if self.is_file and not first:
                    self.replays += 1
                    return True
                return False
            if first:
                self._mark_connected()
                first = False
            self._on_frame(frame, now)
            self._finish_clips()
            if period_s:
                next_at = max(next_at + period_s, now - period_s)
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stopping.wait(delay)
        return True

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

    def _wait(self, seconds: float) -> None:
        # Sleep in short steps so clips due while the stream is down still complete on time.
        end = time.monotonic() + seconds
        while not self._stopping.is_set():
            self._finish_clips()
            left = end - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, 0.2))

    def _mark_lost(self, reason: str) -> None:
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            self.losses += 1
            log.warning("cctv_stream_lost camera=%s lane=%s url=%s reason=%s",
                        self.camera_id, self.lane_id, self.display_url, reason.replace(" ", "_"))
        self._connected = False

    def _mark_connected(self) -> None:
        self._connected = True
        if self._lost_since is not None:
            down_s = time.monotonic() - self._lost_since
            self._lost_since = None
            self.reconnects += 1
            log.warning("cctv_stream_recovered camera=%s lane=%s url=%s down_s=%.1f",
                        self.camera_id, self.lane_id, self.display_url, down_s)

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
