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
(urllib), reconnect with backoff up to the camera's `reconnect_max_s`, logged once on
loss and once on recovery (devices/reconnect.py).
"""

from __future__ import annotations

import logging
import select
import time
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from typing import Any

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.hikvision import parse_document
from edge_agent.devices.anpr.multipart import MultipartError, Part, boundary_of
from edge_agent.devices.anpr.notification import Ignored, Image, PlateNotification, is_jpeg
from edge_agent.devices.reconnect import Backoff, LinkEvents, LinkLost, ReconnectingWorker
from edge_agent.models import Rejected

log = logging.getLogger(__name__)

Accept = Callable[..., tuple[int, str]]

FIRST_BACKOFF_S = 0.5
LINK_EVENTS = LinkEvents(connected="anpr_pull_connected", lost="anpr_pull_lost", back="anpr_pull_recovered",
                         failed="anpr_pull_failed")


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


class PullCamera(ReconnectingWorker):
    """One polled camera: a thread feeding `accept(camera, notification, ...)`."""

    # urllib's URLError is an OSError; a garbled response raises HTTPException or MultipartError.
    transient_errors = (OSError, HTTPException, MultipartError, ValueError)

    def __init__(self, camera: CameraConfig, accept: Accept, *, recognizer: Callable[[], Any] | None = None,
                 repeat_s: float = 60.0, read_timeout_s: float = 0.5, dead_after_s: float = 300.0) -> None:
        super().__init__(
            name=f"anpr-pull-{camera.id}", log=log, events=LINK_EVENTS,
            context=f"camera={camera.id} mode={camera.pull_mode}",
            backoff=Backoff(base_s=FIRST_BACKOFF_S, cap_s=camera.reconnect_max_s),
        )
        self.camera = camera
        self.accept = accept
        self.recognizer = recognizer
        self.repeat_s = repeat_s
        self.read_timeout_s = read_timeout_s
        self.dead_after_s = dead_after_s  # Hikvision sends heartbeats every few seconds
        self.counters: dict[str, int] = {"events": 0, "accepted": 0, "rejected": 0, "ignored": 0, "connects": 0}
        self._last_plate: tuple[str, float] = ("", 0.0)
        handlers: list[Any] = []
        if camera.username:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, camera.url, camera.username, camera.password)
            handlers += [urllib.request.HTTPDigestAuthHandler(passwords),
                         urllib.request.HTTPBasicAuthHandler(passwords)]
        self._opener = urllib.request.build_opener(*handlers)

    def stop(self, timeout_s: float | None = None) -> None:
        super().stop(timeout_s if timeout_s is not None else 5 + self.read_timeout_s)

    def health(self) -> dict[str, Any]:
        # "errors" is the worker's link_errors under the name the listener's readers know.
        return {"camera": self.camera.id, "mode": self.camera.pull_mode, "connected": self.connected,
                **self.counters, "errors": self.link_errors, **super().health()}

    # ------------------------------------------------------------------ the link

    def _open(self):
        timeout_s = self.dead_after_s if self.camera.pull_mode == "alert_stream" else max(5.0, self.read_timeout_s)
        return self._opener.open(self.camera.url, timeout=timeout_s)

    def _serve(self, response) -> None:
        if self.camera.pull_mode == "alert_stream":
            self._stream(response)
        else:
            self._snapshot(response)

    def _pause_s(self) -> float:
        return self.camera.poll_interval_s  # a snapshot was taken: the next one is due then

    def _stream(self, response) -> None:
        # The socket timeout only detects a dead connection; quiet periods (which end the
        # pending event) are found with select(), because a read that timed out leaves
        # Python's socket file unusable.
        stream = AlertStream(response.headers.get("Content-Type", ""))
        self._up()
        quiet_since = time.monotonic()
        while not self._stopping.is_set():
            ready, _, _ = select.select([response.fileno()], [], [], self.read_timeout_s)
            if not ready:
                self._handle(stream.flush())  # quiet: the pending event is complete
                if time.monotonic() - quiet_since > self.dead_after_s:
                    raise LinkLost(f"alert stream silent for {self.dead_after_s:.0f} s")
                continue
            chunk = response.read1(65536)
            if not chunk:
                self._handle(stream.flush())
                raise LinkLost("alert stream closed by the camera")
            quiet_since = time.monotonic()
            self._handle(stream.feed(chunk))

    def _snapshot(self, response) -> None:
        from edge_agent.devices.anpr.recognition import decode_jpeg

        if self.recognizer is None:
            # Before the link counts as up: a camera that cannot be read is logged lost once.
            raise ValueError("snapshot mode needs a local recognizer")
        data = response.read(16 * 1024 * 1024)
        self._up()
        frame = decode_jpeg(data)
        if frame is None:
            self.counters["rejected"] += 1
            log.warning("anpr_snapshot_rejected camera=%s reason=not_an_image bytes=%d", self.camera.id, len(data))
            return
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
        self._link_up()


def _kind(name: str) -> str:
    lowered = name.lower()
    if "plate" in lowered:
        return "plate"
    if "vehicle" in lowered:
        return "vehicle"
    return "scene"
