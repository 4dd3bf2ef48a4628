"""Plate cameras the agent fetches from, rather than ones that push.

Two modes (`CameraConfig.pull_mode`):

* `alert_stream`: Hikvision's `GET /ISAPI/Event/notification/alertStream` (ISAPI
  Developer Guide, "Event and alarm: alert stream"): one endless multipart/mixed
  response; each event is an EventNotificationAlert part (XML or JSON) followed by its
  JPEG parts. `AlertStream` turns the bytes into notifications (sans-I/O); an event is
  complete when the next document arrives or the stream goes quiet.
* `snapshot`: `GET url` returns one JPEG (`/ISAPI/Streaming/channels/101/picture`, or any
  camera's snapshot URL) every `poll_interval_s`; plates are read by local recognition.
  A plate seen again within `repeat_s` is not reported again.

`PullCamera` is the thin transport: one thread, HTTP with Basic or Digest login
(urllib), reconnect with backoff, logged once on loss and once on recovery.
"""

from __future__ import annotations

import logging
import select
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.hikvision import parse_document
from edge_agent.devices.anpr.multipart import MultipartError, Part, boundary_of
from edge_agent.devices.anpr.notification import Ignored, Image, PlateNotification, is_jpeg
from edge_agent.models import Rejected

log = logging.getLogger(__name__)

Accept = Callable[..., tuple[int, str]]


class AlertStream:
    """Bytes of a Hikvision alert stream in, notifications out.

    The stream never ends, so a part cannot wait for the next boundary to be known
    complete: each part carries Content-Length (as Hikvision sends it) and is framed by
    it; a part without one ends at the next boundary. Lost sync (garbage between parts)
    is skipped up to the next boundary and counted.
    """

    MAX_HEADER_BYTES = 8192
    MAX_PART_BYTES = 8 * 1024 * 1024

    def __init__(self, content_type: str) -> None:
        self._delimiter = b"--" + boundary_of(content_type)
        self._buffer = bytearray()
        self._headers: dict[str, str] | None = None
        self._document: Part | None = None
        self._images: list[Image] = []
        self.rejected = 0
        self.resyncs = 0

    def feed(self, data: bytes) -> list[PlateNotification | Ignored | Rejected]:
        self._buffer += data
        out: list[PlateNotification | Ignored | Rejected] = []
        while True:
            part = self._next_part()
            if part is None:
                break
            if part.content_type.startswith("image/") or is_jpeg(part.body):
                if self._document is not None and is_jpeg(part.body):
                    self._images.append(Image(kind=_kind(part.name), jpeg=part.body, name=part.name))
                continue
            out += self.flush()
            self._document = part
        return out

    def flush(self) -> list[PlateNotification | Ignored | Rejected]:
        """The pending event, complete with the images received so far."""
        if self._document is None:
            return []
        document, images = self._document, tuple(self._images)
        self._document, self._images = None, []
        encoding = "json" if document.content_type.endswith("json") or document.body.lstrip()[:1] == b"{" else "xml"
        result = parse_document(document.body, encoding, images)
        if isinstance(result, Rejected):
            self.rejected += 1
        return [result]

    def _next_part(self) -> Part | None:
        buf = self._buffer
        if self._headers is None:
            start = buf.find(self._delimiter)
            if start < 0:
                # Keep a tail that may hold the start of a delimiter; drop the rest.
                keep = len(self._delimiter) + 2
                if len(buf) > keep:
                    if buf[:-keep].strip():
                        self.resyncs += 1
                    del buf[:-keep]
                return None
            if buf[:start].strip():
                self.resyncs += 1  # bytes between parts that are not a part
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                if len(buf) - start > self.MAX_HEADER_BYTES:
                    self.resyncs += 1
                    del buf[: start + len(self._delimiter)]
                return None
            lines = bytes(buf[start + len(self._delimiter):end]).split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            del buf[: end + 4]
            self._headers = headers
        length_text = self._headers.get("content-length", "")
        if length_text.isdigit() and int(length_text) <= self.MAX_PART_BYTES:
            length = int(length_text)
            if len(buf) < length:
                return None
            body = bytes(buf[:length])
            del buf[:length]
        else:
            end = buf.find(b"\r\n" + self._delimiter)
            if end < 0:
                if len(buf) > self.MAX_PART_BYTES:
                    self.resyncs += 1
                    self._headers = None
                    buf.clear()
                return None
            body = bytes(buf[:end])
            del buf[:end]
        part = Part(self._headers, body)
        self._headers = None
        return part


class PullCamera:
    """One polled camera: a thread feeding `accept(camera, notification, ...)`."""

    def __init__(self, camera: CameraConfig, accept: Accept, *, recognizer: Callable[[], Any] | None = None,
                 repeat_s: float = 60.0, read_timeout_s: float = 0.5, dead_after_s: float = 300.0) -> None:
        self.camera = camera
        self.accept = accept
        self.recognizer = recognizer
        self.repeat_s = repeat_s
        self.read_timeout_s = read_timeout_s
        self.dead_after_s = dead_after_s  # Hikvision sends heartbeats every few seconds
        self.counters: dict[str, int] = {"events": 0, "accepted": 0, "rejected": 0, "ignored": 0, "connects": 0,
                                         "errors": 0}
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_plate: tuple[str, float] = ("", 0.0)
        handlers: list[Any] = []
        if camera.username:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, camera.url, camera.username, camera.password)
            handlers += [urllib.request.HTTPDigestAuthHandler(passwords),
                         urllib.request.HTTPBasicAuthHandler(passwords)]
        self._opener = urllib.request.build_opener(*handlers)

    def start(self) -> PullCamera:
        self._thread = threading.Thread(target=self._run, name=f"anpr-pull-{self.camera.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5 + self.read_timeout_s)

    def health(self) -> dict[str, Any]:
        return {"camera": self.camera.id, "mode": self.camera.pull_mode, "connected": self.connected,
                **self.counters}

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        backoff_s = 0.5
        while not self._stop.is_set():
            try:
                if self.camera.pull_mode == "alert_stream":
                    self._stream()
                else:
                    self._snapshot()
                    backoff_s = 0.5
                    self._stop.wait(self.camera.poll_interval_s)
                    continue
            except (OSError, urllib.error.URLError, MultipartError, ValueError) as err:
                self._lost(err)
            except Exception:  # a bug: log it, keep the thread (and the lane) alive
                log.exception("anpr_pull_failed camera=%s", self.camera.id)
                self._lost(RuntimeError("internal error"))
            if self._stop.wait(backoff_s):
                break
            backoff_s = min(30.0, backoff_s * 2)

    def _stream(self) -> None:
        # The socket timeout only detects a dead connection; quiet periods (which end the
        # pending event) are found with select(), because a read that timed out leaves
        # Python's socket file unusable.
        with self._opener.open(self.camera.url, timeout=self.dead_after_s) as response:
            stream = AlertStream(response.headers.get("Content-Type", ""))
            self._up()
            quiet_since = time.monotonic()
            while not self._stop.is_set():
                ready, _, _ = select.select([response.fileno()], [], [], self.read_timeout_s)
                if not ready:
                    self._handle(stream.flush())  # quiet: the pending event is complete
                    if time.monotonic() - quiet_since > self.dead_after_s:
                        raise ConnectionError(f"alert stream silent for {self.dead_after_s:.0f} s")
                    continue
                chunk = response.read1(65536)
                if not chunk:
                    self._handle(stream.flush())
                    raise ConnectionError("alert stream closed by the camera")
                quiet_since = time.monotonic()
                self._handle(stream.feed(chunk))

    def _snapshot(self) -> None:
        from edge_agent.devices.anpr.recognition import decode_jpeg

        with self._opener.open(self.camera.url, timeout=max(5.0, self.read_timeout_s)) as response:
            data = response.read(16 * 1024 * 1024)
        self._up()
        frame = decode_jpeg(data)
        if frame is None:
            self.counters["rejected"] += 1
            log.warning("anpr_snapshot_rejected camera=%s reason=not_an_image bytes=%d", self.camera.id, len(data))
            return
        if self.recognizer is None:
            raise ValueError("snapshot mode needs a local recognizer")
        candidates = self.recognizer().recognize(frame)
        if not candidates:
            return
        best = candidates[0]
        last_text, last_at = self._last_plate
        now = time.monotonic()
        if best.text == last_text and now - last_at < self.repeat_s:
            return  # the same truck still in view
        self._last_plate = (best.text, now)
        note = PlateNotification(plate=best.raw or best.text, confidence=best.confidence,
                                 images=(Image(kind="scene", jpeg=data, name="snapshot.jpg"),),
                                 source_format="snapshot")
        self._handle([note], recognized=True)

    def _handle(self, results: list[PlateNotification | Ignored | Rejected], recognized: bool = False) -> None:
        for result in results:
            self.counters["events"] += 1
            if isinstance(result, Rejected):
                self.counters["rejected"] += 1
                log.warning("anpr_pull_rejected camera=%s reason=%s", self.camera.id, result.reason)
            elif isinstance(result, Ignored):
                self.counters["ignored"] += 1
            else:
                status, _reason = self.accept(self.camera, result, recognized=recognized)
                self.counters["accepted" if status == 200 else "rejected"] += 1

    def _up(self) -> None:
        self.counters["connects"] += 1
        if not self.connected:
            self.connected = True
            log.info("anpr_pull_connected camera=%s mode=%s", self.camera.id, self.camera.pull_mode)

    def _lost(self, err: BaseException) -> None:
        self.counters["errors"] += 1
        if self.connected or self.counters["errors"] == 1:
            log.warning("anpr_pull_lost camera=%s error=%s", self.camera.id, err)
        self.connected = False


def _kind(name: str) -> str:
    lowered = name.lower()
    if "plate" in lowered:
        return "plate"
    if "vehicle" in lowered:
        return "vehicle"
    return "scene"
