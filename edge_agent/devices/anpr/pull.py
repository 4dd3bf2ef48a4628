"""Plate cameras the agent fetches from, rather than ones that push.

Two kinds of mode (`CameraConfig.pull_mode`):

* a vendor's event stream, e.g. `alert_stream`, Hikvision's endless multipart response
  of event documents and their JPEGs: the vendor's stream parser (vendors.py,
  `VendorSpec.streams`; hikvision.AlertStream) turns the bytes into notifications; an
  event is complete when the next one arrives or the stream goes quiet;
* `snapshot`, any vendor: `GET url` returns one JPEG (`/ISAPI/Streaming/channels/101/picture`, or any
  camera's snapshot URL) every `poll_interval_s`; plates are read by local recognition.
  Consecutive snapshots of one truck vote (voting.FrameVote): the plate is reported
  once two snapshots read it alike, after `vote_frames` snapshots with a read, or when
  the truck is gone (a snapshot with no plate, or another plate).
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
from edge_agent.devices.anpr.multipart import MultipartError
from edge_agent.devices.anpr.notification import Ignored, Image, PlateNotification
from edge_agent.devices.anpr.vendors import SNAPSHOT, VendorSpec
from edge_agent.devices.anpr.voting import FrameVote
from edge_agent.devices.reconnect import Backoff, LinkEvents, LinkLost, ReconnectingWorker
from edge_agent.models import Rejected

log = logging.getLogger(__name__)

Accept = Callable[..., tuple[int, str]]

FIRST_BACKOFF_S = 0.5
LINK_EVENTS = LinkEvents(connected="anpr_pull_connected", lost="anpr_pull_lost", back="anpr_pull_recovered",
                         failed="anpr_pull_failed")


class PullCamera(ReconnectingWorker):
    """One polled camera: a thread feeding `accept(camera, notification, ...)`."""

    # urllib's URLError is an OSError; a garbled response raises HTTPException or MultipartError.
    transient_errors = (OSError, HTTPException, MultipartError, ValueError)

    def __init__(self, camera: CameraConfig, accept: Accept, vendor: VendorSpec, *,
                 recognizer: Callable[[], Any] | None = None,
                 repeat_s: float = 60.0, read_timeout_s: float = 0.5, dead_after_s: float = 300.0,
                 vote_frames: int = 5) -> None:
        super().__init__(
            name=f"anpr-pull-{camera.id}", log=log, events=LINK_EVENTS,
            context=f"camera={camera.id} mode={camera.pull_mode}",
            backoff=Backoff(base_s=FIRST_BACKOFF_S, cap_s=camera.reconnect_max_s),
        )
        self.camera = camera
        self.vendor = vendor
        self.accept = accept
        self.recognizer = recognizer
        self.repeat_s = repeat_s
        self.read_timeout_s = read_timeout_s
        self.dead_after_s = dead_after_s  # Hikvision sends heartbeats every few seconds
        self.counters: dict[str, int] = {"events": 0, "accepted": 0, "rejected": 0, "ignored": 0, "connects": 0}
        self._last_plate: tuple[str, float] = ("", 0.0)
        self.vote_frames = vote_frames
        self._vote = FrameVote(max_frames=vote_frames)
        self._vote_jpeg = b""  # the snapshot of the vote's latest read, sent with the plate
        handlers: list[Any] = []
        if camera.username:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, camera.url, camera.username, camera.password)
            handlers += [urllib.request.HTTPDigestAuthHandler(passwords),
                         urllib.request.HTTPBasicAuthHandler(passwords)]
        self._opener = urllib.request.build_opener(*handlers)

    def stop(self, timeout_s: float | None = None) -> None:
        super().stop(timeout_s if timeout_s is not None else 5 + self.read_timeout_s)

    def watched(self) -> dict[str, float]:
        # Opening an event stream may wait for the camera as long as a dead stream is tolerated.
        streaming = self.camera.pull_mode != SNAPSHOT
        return {self.thread_name: self.dead_after_s + 30.0 if streaming else self.max_silence_s}

    def health(self) -> dict[str, Any]:
        # "errors" is the worker's link_errors under the name the listener's readers know.
        return {"camera": self.camera.id, "mode": self.camera.pull_mode, "connected": self.connected,
                **self.counters, "errors": self.link_errors, **super().health()}

    # ------------------------------------------------------------------ the link

    def _open(self):
        streaming = self.camera.pull_mode != SNAPSHOT
        timeout_s = self.dead_after_s if streaming else max(5.0, self.read_timeout_s)
        return self._opener.open(self.camera.url, timeout=timeout_s)

    def _serve(self, response) -> None:
        if self.camera.pull_mode == SNAPSHOT:
            self._snapshot(response)
        else:
            self._stream(response)

    def _pause_s(self) -> float:
        return self.camera.poll_interval_s  # a snapshot was taken: the next one is due then

    def _stream(self, response) -> None:
        # The socket timeout only detects a dead connection; quiet periods (which end the
        # pending event) are found with select(), because a read that timed out leaves
        # Python's socket file unusable.
        stream = self.vendor.stream_parser(self.camera.pull_mode, response.headers.get("Content-Type", ""))
        self._up()
        quiet_since = time.monotonic()
        while not self._stopping.is_set():
            self._progress()
            ready, _, _ = select.select([response.fileno()], [], [], self.read_timeout_s)
            if not ready:
                self._handle(stream.flush())  # quiet: the pending event is complete
                if time.monotonic() - quiet_since > self.dead_after_s:
                    raise LinkLost(f"event stream silent for {self.dead_after_s:.0f} s")
                continue
            chunk = response.read1(65536)
            if not chunk:
                self._handle(stream.flush())
                raise LinkLost("event stream closed by the camera")
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
        if self._vote.reads and not (candidates and self._vote.same_plate(candidates)):
            self._report_vote()  # the truck has gone: its reads so far are its answer
        if not candidates:
            return
        self._vote.add(candidates)
        self._vote_jpeg = data
        if self._vote.settled:
            self._report_vote()

    def _report_vote(self) -> None:
        best = self._vote.answer()
        data = self._vote_jpeg
        self._vote = FrameVote(max_frames=self.vote_frames)
        if best is None:
            return
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
