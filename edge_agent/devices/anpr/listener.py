"""The lane's HTTP listener for plate cameras that push, and the owner of polled ones.

One listener per lane (stdlib `ThreadingHTTPServer`, a thread per connection, at most
`max_connections` of them: cameras push a few events a minute, and it costs no extra
package). Routes::

    POST /anpr/<camera-id>   one event from that camera, parsed as its vendor's
                             (vendors.py: hikvision XML, JSON or multipart; dahua
                             ITSAPI JSON; generic JSON). docs/cameras.md says how.
    POST /anpr  or  /        the same, the vendor told by the body, the camera named in it
    GET  /health             counters as JSON

Answers: 200 accepted (or a heartbeat ignored), 400 with the reason as text for a
malformed body or request, 401 with a challenge when the camera's `push_auth` is not
met, 404 for an unknown camera, 408 for a request not complete within `read_timeout_s`,
411 for a body of no stated length, 413 for a body over the limit, 503 when the lane
or the camera already has as many uploads open as it may. A vendor whose cameras want
their own answer (Dahua's `{"Result": true}`) gets it in the body, beside the status.
Nothing a camera sends can stop the listener: every failure is a value, counted and
logged, whatever the bytes, headers, encodings or nesting.

Bodies come with Content-Length or chunked (RFC 9112 section 7.1). The time a request
may take is bounded from its first byte to its last (`read_timeout_s`, headers and body
together, however slowly the bytes trickle), and so is the wait for the next request on
a kept-alive connection; connections beyond `max_connections` are answered 503 at once
by the server thread, so stalled uploads cannot pile up threads. Uploads beyond
`max_uploads_per_camera` from one camera are refused before their body is read.

Each accepted read is posted as a `models.PlateRead` (normal-form text, raw text,
confidence, the camera's role). JPEGs that came with it go to `on_image(lane, camera,
event_id, kind, jpeg)`, the raw body to `on_payload(lane, camera, event_id,
content_type, body)`, both optional, for the evidence store; `event_id` is the
PlateRead's id.

Cameras with `mode = "pull"` are polled by `pull.PullCamera` workers started and
stopped with the listener; their reads take the same path.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.auth import Authenticator
from edge_agent.devices.anpr.notification import Ignored, PlateNotification
from edge_agent.devices.anpr.pull import PullCamera
from edge_agent.devices.anpr.recognition import CameraReported, PlateRecognizer, decode_jpeg
from edge_agent.devices.anpr.vendors import VENDORS, VendorSpec, vendor_for
from edge_agent.errors import ConfigError
from edge_agent.models import PlateRead, PlateRole, Rejected
from edge_agent.plates.normal_form import format_countries, normalize_plate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
SERVER_SILENCE_S = 10.0  # the server thread turns every 0.2 s; requests run on their own threads
# A camera on the lane's network sends a push of a few hundred kB in well under a second;
# ten seconds from the first byte to the last is generous and still frees a thread soon.
READ_TIMEOUT_S = 10.0
# A lane has a handful of cameras, each pushing one event at a time; these leave room for
# bursts and retries while keeping the listener's threads bounded.
MAX_CONNECTIONS = 64
MAX_UPLOADS_PER_CAMERA = 4
MAX_CHUNK_LINE_BYTES = 1024
MAX_TRAILER_LINES = 32
ImageSink = Callable[[str, str, str, str, bytes], None]
PayloadSink = Callable[[str, str, str, str, bytes], None]

_ROLES = {"tractor": PlateRole.TRACTOR, "trailer": PlateRole.TRAILER}


class AnprListener:
    """`start()` binds and serves in a thread; `.url` and `.port` are valid after it."""

    def __init__(self, lane_id: str, cameras: list[CameraConfig], post: Callable[[object], None],
                 host: str = "127.0.0.1", port: int = 0, *, on_image: ImageSink | None = None,
                 on_payload: PayloadSink | None = None, recognizer: PlateRecognizer | None = None,
                 read_timeout_s: float = READ_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS,
                 max_uploads_per_camera: int = MAX_UPLOADS_PER_CAMERA, plate_countries: tuple[str, ...] = ()) -> None:
        self.lane_id = lane_id
        self.plate_countries = plate_countries  # the site's home countries, for local recognition
        self.read_timeout_s = read_timeout_s
        self.max_connections = max_connections
        self.max_uploads_per_camera = max_uploads_per_camera
        self._uploads: Counter[str] = Counter()  # open uploads by camera id ("" = the shared path)
        self.cameras = {c.id: c for c in cameras if c.kind == "anpr"}
        self.post = post
        self.host = host
        self.port = port
        self.on_image = on_image
        self.on_payload = on_payload
        self._recognizer = recognizer
        self._recognizer_lock = threading.Lock()  # one local recognition at a time (CPU, memory)
        self.auth = Authenticator()
        self.counters: Counter[str] = Counter()
        self.by_camera: dict[str, dict[str, Any]] = {cid: {"accepted": 0, "rejected": 0, "last_at": None,
                                                             "last_plate": ""} for cid in self.cameras}
        self.last_reject = ""
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._pullers = [PullCamera(camera, self.accept_notification, VENDORS[camera.vendor],
                                    recognizer=self.local_recognizer)
                         for camera in self.cameras.values() if camera.mode == "pull"]
        # Set by the agent to the service watchdog's beat: called with a thread's name.
        self.heartbeat: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    @property
    def thread_name(self) -> str:
        return f"anpr-{self.lane_id}"

    def watched(self) -> dict[str, float]:
        """The threads the service watchdog should hear from: the server's and each puller's."""
        out = {self.thread_name: SERVER_SILENCE_S}
        for puller in self._pullers:
            out.update(puller.watched())
        return out

    def start(self) -> AnprListener:
        handler = type("Handler", (_Handler,), {"listener": self})
        self._server = _Server((self.host or "127.0.0.1", self.port), handler, self.max_connections,
                               self._refuse_connection)
        self._server.on_turn = lambda: self.heartbeat(self.thread_name) if self.heartbeat else None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        for puller in self._pullers:
            puller.heartbeat = self.heartbeat
            puller.start()
        log.info("anpr_listener_started lane=%s url=%s cameras=%s", self.lane_id, self.url, ",".join(self.cameras))
        return self

    def stop(self) -> None:
        for puller in self._pullers:
            puller.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        log.info("anpr_listener_stopped lane=%s", self.lane_id)

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "lane": self.lane_id,
                "url": self.url,
                "running": bool(self._thread and self._thread.is_alive()),
                **{k: self.counters.get(k, 0) for k in ("accepted", "rejected", "ignored", "unauthorized",
                                                         "low_confidence", "unknown_camera", "timeouts", "busy",
                                                         "malformed_http", "warnings", "parser_failures",
                                                         "errors")},
                "connections": self._server.connections if self._server is not None else 0,
                "uploads": dict(self._uploads),  # open uploads by camera ("" = the shared path)
                "last_reject": self.last_reject,
                "cameras": {cid: dict(v) for cid, v in self.by_camera.items()},
                "pull": [p.health() for p in self._pullers],
            }

    # ------------------------------------------------------------------ processing

    def handle_push(self, camera_id: str, content_type: str, body: bytes) -> tuple[int, str]:
        """One pushed body -> (HTTP status, reason). Never raises."""
        status, reason, _vendor = self._handle_push(camera_id, content_type, body)
        return status, reason

    def _handle_push(self, camera_id: str, content_type: str, body: bytes) -> tuple[int, str, VendorSpec | None]:
        camera = self.cameras.get(camera_id) if camera_id else None
        if camera_id and camera is None:
            return (*self._count_reject(None, 404, f"unknown camera {camera_id!r}", "unknown_camera"), None)
        if camera is not None and camera.mode == "pull":
            return (*self._count_reject(camera, 404, f"camera {camera_id!r} is polled, not pushing",
                                        "unknown_camera"), None)
        vendor = None
        try:
            vendor = VENDORS.get(camera.vendor) if camera is not None else vendor_for(content_type, body)
            if vendor is None:
                return (*self._count_reject(camera, 404, f"camera {camera_id!r} has an unknown vendor",
                                            "unknown_camera"), None)
            parsed = vendor.parse_push(body, content_type)
        except Exception as err:
            # A parser must return a value for any bytes; one that raised met input it did
            # not foresee. The camera still gets its answer, and the bug its traceback.
            log.exception("anpr_parser_failed lane=%s camera=%s vendor=%s", self.lane_id,
                          camera.id if camera else "-", vendor.name if vendor else "-")
            with self._lock:
                self.counters["parser_failures"] += 1  # also counted as rejected, below
            return (*self._count_reject(camera, 400, f"body could not be parsed ({type(err).__name__})"), vendor)
        return (*self._handle_parsed(camera, vendor, parsed, content_type, body), vendor)

    def _handle_parsed(self, camera: CameraConfig | None, vendor: VendorSpec,
                       parsed: PlateNotification | Ignored | Rejected, content_type: str,
                       body: bytes) -> tuple[int, str]:
        if isinstance(parsed, Rejected):
            return self._count_reject(camera, 400, parsed.reason)
        if isinstance(parsed, Ignored):
            with self._lock:
                self.counters["ignored"] += 1
            return 200, f"ignored: {parsed.reason}"
        if camera is None:
            camera = self._camera_from_payload(parsed)
            if camera is None:
                return self._count_reject(None, 400, "camera not named in the URL (/anpr/<id>) nor in the payload",
                                          "unknown_camera")
        elif vendor.names_camera and parsed.camera and parsed.camera != camera.id:
            return self._count_reject(camera, 400, f"payload camera {parsed.camera!r} is not {camera.id!r}")
        if parsed.lane and parsed.lane != self.lane_id:
            return self._count_reject(camera, 400, f"payload lane {parsed.lane!r} is not {self.lane_id!r}")
        return self.accept_notification(camera, parsed, content_type=content_type, body=body)

    def accept_notification(self, camera: CameraConfig, note: PlateNotification, *, content_type: str = "",
                            body: bytes = b"", recognized: bool = False) -> tuple[int, str]:
        """A parsed camera event (pushed or pulled) -> PlateRead posted. Never raises.

        `recognized`: the plate text was already read locally (snapshot polling).
        """
        try:
            return self._accept(camera, note, content_type, body, recognized)
        except Exception as err:  # a bug must not take the listener down: log it, answer 500
            log.exception("anpr_accept_failed lane=%s camera=%s", self.lane_id, camera.id)
            with self._lock:
                self.counters["errors"] += 1
            return 500, f"internal error: {type(err).__name__}"

    def _accept(self, camera: CameraConfig, note: PlateNotification, content_type: str, body: bytes,
                recognized: bool) -> tuple[int, str]:
        if camera.recognition == "local" and not recognized:
            image = next((i for i in note.images if i.kind == "plate"), None) or next(iter(note.images), None)
            if image is None:
                return self._count_reject(camera, 400, "local recognition needs an image and the event has none")
            frame = decode_jpeg(image.jpeg)
            if frame is None:
                return self._count_reject(camera, 400, f"image {image.name or image.kind} does not decode")
            with self._recognizer_lock:
                candidates = self.local_recognizer().recognize(frame)
        else:
            candidates = CameraReported(note.plate, note.confidence).recognize(None)
        if not candidates:
            return self._count_reject(camera, 400, "no plate read" if camera.recognition == "local"
                                      else "plate has no letters or digits")
        best = candidates[0]
        raw = best.raw or best.text
        text = normalize_plate(best.text)
        if not text or len(text) > 20:
            return self._count_reject(camera, 400, f"plate {raw[:40]!r} is not 1..20 letters and digits")
        if best.confidence < camera.min_confidence:
            with self._lock:
                self.counters["low_confidence"] += 1
            log.info("anpr_low_confidence lane=%s camera=%s plate=%s confidence=%.2f", self.lane_id, camera.id,
                     text, best.confidence)
            return 200, "ignored: below min_confidence"
        countries = format_countries(text)
        read = PlateRead(
            lane=self.lane_id,
            text=text,
            raw=raw[:40],
            confidence=best.confidence,
            role=_ROLES.get(camera.role, PlateRole.UNKNOWN),
            camera=camera.id,
            country=(note.country or (countries[0] if len(countries) == 1 else ""))[:20],
            source=f"anpr:{camera.id}",
        )
        self._deliver(camera, note, read, content_type, body)
        for warning in note.warnings:
            log.warning("anpr_push_warning lane=%s camera=%s read=%s warning=%s", self.lane_id, camera.id, read.id,
                        warning)
        with self._lock:
            self.counters["accepted"] += 1
            self.counters["warnings"] += len(note.warnings)
            stats = self.by_camera.setdefault(camera.id, {"accepted": 0, "rejected": 0})
            stats["accepted"] += 1
            stats["last_at"] = datetime.now(UTC).isoformat()
            stats["last_plate"] = text
        log.info("anpr_plate lane=%s camera=%s plate=%s raw=%r confidence=%.2f role=%s", self.lane_id, camera.id,
                 text, raw, best.confidence, read.role.value)
        if note.warnings:
            return 200, f"accepted {read.id}; " + "; ".join(note.warnings)
        return 200, f"accepted {read.id}"

    def local_recognizer(self) -> PlateRecognizer:
        if self._recognizer is None:
            from edge_agent.devices.anpr.recognition import shared_local_recognizer

            self._recognizer = shared_local_recognizer(self.plate_countries)
        return self._recognizer

    def _deliver(self, camera: CameraConfig, note: PlateNotification, read: PlateRead, content_type: str,
                 body: bytes) -> None:
        # The core first: evidence sinks are slower and must not delay the lane.
        _call_safely(self.post, read, what="post")
        if self.on_payload is not None and body:
            _call_safely(self.on_payload, self.lane_id, camera.id, read.id, content_type, body, what="on_payload")
        if self.on_image is not None:
            for image in note.images:
                _call_safely(self.on_image, self.lane_id, camera.id, read.id, image.kind, image.jpeg, what="on_image")

    def _camera_from_payload(self, note: PlateNotification) -> CameraConfig | None:
        if note.camera in self.cameras:
            return self.cameras[note.camera]
        pushing = [c for c in self.cameras.values() if c.mode == "push" and c.vendor == note.source_format]
        return pushing[0] if len(pushing) == 1 else None

    def _count_reject(self, camera: CameraConfig | None, status: int, reason: str,
                      counter: str = "rejected") -> tuple[int, str]:
        with self._lock:
            self.counters[counter] += 1
            if counter != "rejected":
                self.counters["rejected"] += 1
            if camera is not None:
                self.by_camera.setdefault(camera.id, {"accepted": 0, "rejected": 0})["rejected"] += 1
            self.last_reject = reason
        log.warning("anpr_push_rejected lane=%s camera=%s status=%d reason=%s", self.lane_id,
                    camera.id if camera else "-", status, reason)
        return status, reason

    def _count_unauthorized(self, camera: CameraConfig, reason: str) -> None:
        with self._lock:
            self.counters["unauthorized"] += 1
        log.warning("anpr_push_unauthorized lane=%s camera=%s reason=%s", self.lane_id, camera.id, reason)

    def _open_upload(self, key: str) -> bool:
        """Take one of the camera's upload places (key "" = the shared path); False when full."""
        with self._lock:
            if self._uploads[key] >= self.max_uploads_per_camera:
                return False
            self._uploads[key] += 1
            return True

    def _close_upload(self, key: str) -> None:
        with self._lock:
            self._uploads[key] -= 1
            if self._uploads[key] <= 0:
                del self._uploads[key]

    def _refuse_connection(self, connection: socket.socket) -> None:
        """Answer a connection over `max_connections` on the server thread, never blocking it."""
        status, reason = self._count_reject(None, 503, f"more than {self.max_connections} connections open",
                                            "busy")
        data = reason.encode() + b"\n"
        head = (f"HTTP/1.1 {status} Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(OSError):  # the client is gone or not reading: refused either way
            # What the client already sent is read (without waiting), so that closing the
            # socket sends FIN, not a reset that could destroy the answer before it is read.
            connection.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                connection.recv(65536)
            connection.settimeout(0.2)
            connection.sendall(head.encode() + data)


def listen_address(cameras: list[CameraConfig]) -> dict[str, Any]:
    """host/port keyword arguments for a lane's listener from its cameras' settings.

    Raises ConfigError when two cameras of the lane ask for different ones.
    """
    hosts = {c.listen_host for c in cameras if c.kind == "anpr" and c.listen_host}
    ports = {c.listen_port for c in cameras if c.kind == "anpr" and c.listen_port}
    problems = []
    if len(hosts) > 1:
        problems.append(f"cameras of one lane give different listen_host values {sorted(hosts)}")
    if len(ports) > 1:
        problems.append(f"cameras of one lane give different listen_port values {sorted(ports)}")
    if problems:
        raise ConfigError(problems)
    out: dict[str, Any] = {}
    if hosts:
        out["host"] = hosts.pop()
    if ports:
        out["port"] = ports.pop()
    return out


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most `max_connections` of them; the rest are refused."""

    request_queue_size = 64  # a burst of connects is queued by the kernel, not dropped
    on_turn: Callable[[], None] | None = None

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int,
                 refuse: Callable[[socket.socket], None]) -> None:
        super().__init__(address, handler)
        self._places = threading.BoundedSemaphore(max_connections)
        self._refuse = refuse
        self._count_lock = threading.Lock()
        self.connections = 0

    def service_actions(self) -> None:
        # Called by serve_forever at every turn of its loop (poll_interval): the thread is alive.
        if self.on_turn is not None:
            self.on_turn()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._places.acquire(blocking=False):
            self._refuse(request)
            self.shutdown_request(request)
            return
        self._counted(+1)
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: its place is free again
            self._counted(-1)
            self._places.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._counted(-1)
            self._places.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints these to stderr; a camera that hangs up mid-answer is routine.
        log.debug("anpr_connection_error client=%s", client_address, exc_info=True)

    def _counted(self, change: int) -> None:
        with self._count_lock:
            self.connections += change


class _DeadlineReader(io.RawIOBase):
    """The connection's bytes, every wait bounded by what is left of `deadline` (monotonic).

    A socket timeout alone bounds each wait, not the request: a client trickling one byte
    every few seconds would hold its thread forever. Raises TimeoutError once the deadline
    has passed.
    """

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self.deadline = float("inf")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _BodyError(Exception):
    """The request's body cannot be read: (HTTP status, reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _call_safely(fn: Callable[..., Any], *args: Any, what: str) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("anpr_callback_failed callback=%s", what)


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class _Handler(BaseHTTPRequestHandler):
    listener: AnprListener
    server_version = "edge-agent-anpr"
    protocol_version = "HTTP/1.1"
    # Until a request line says otherwise; http.server's HTTP/0.9 default would answer a
    # garbled request line with a bare body and no status line.
    default_request_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection)
        self._buffered = io.BufferedReader(self._reader)
        plain, self.rfile = self.rfile, self._buffered
        plain.close()  # else the socket's close waits for it (socket._io_refs)
        self._camera: CameraConfig | None = None
        self._replied = False

    def handle_one_request(self) -> None:
        """http.server's, with a deadline per request and every failure answered and counted."""
        listener = self.listener
        self._camera, self._replied = None, False
        # What an answer needs, should one be due before the request line is read.
        self.command, self.requestline, self.request_version = "", "", self.default_request_version
        # A kept-alive connection may wait for its next request as long as a request may take.
        self._reader.deadline = time.monotonic() + listener.read_timeout_s
        try:
            if not self._buffered.peek(1):
                self.close_connection = True  # the client closed the connection
                return
        except OSError:  # idle too long (TimeoutError), or reset
            self.close_connection = True
            return
        self._reader.deadline = time.monotonic() + listener.read_timeout_s
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414, "request line longer than 65536 bytes")
                return
            if not self.parse_request():  # it answered the error itself (send_error)
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, f"method {self.command[:20]!r} not supported")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self._timed_out()
        except OSError:  # the client went away mid-request or mid-answer
            self.close_connection = True
        except Exception as err:  # a bug: logged with its traceback, the camera answered
            log.exception("anpr_request_failed lane=%s path=%s", listener.lane_id, getattr(self, "path", "-"))
            with listener._lock:
                listener.counters["errors"] += 1
            self.close_connection = True
            if not self._replied:
                self._try_reply(500, f"internal error: {type(err).__name__}")

    def do_POST(self) -> None:
        listener = self.listener
        path = urlsplit(self.path).path.rstrip("/")
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] != "anpr" or len(parts) > 2:
            self.close_connection = True  # its body, if any, is not read
            self._reply(404, "not found: POST /anpr/<camera-id>")
            return
        camera_id = parts[1] if len(parts) == 2 else ""
        camera = self._camera = listener.cameras.get(camera_id)
        if camera_id and camera is None:
            status, reason = listener._count_reject(None, 404, f"unknown camera {camera_id!r}", "unknown_camera")
            self.close_connection = True
            self._reply(status, reason)
            return
        # Credentials before the body: a client that cannot log in never holds one of the
        # camera's upload places, nor has its body read.
        if camera is not None and camera.push_auth != "none":
            verdict = listener.auth.check(camera.push_auth, self.headers.get("Authorization", ""),
                                          username=camera.username, password=camera.password,
                                          method="POST", uri=self.path)
            if verdict:
                listener._count_unauthorized(camera, verdict)
                challenge = listener.auth.challenge(camera.push_auth, stale=verdict == "stale")
                self.close_connection = True
                self._reply(401, "unauthorized", headers={"WWW-Authenticate": challenge})
                return
        elif camera is None and any(c.push_auth != "none" for c in listener.cameras.values()):
            # Credentials are per camera: a lane with authenticated cameras takes pushes
            # only on the camera's own path, never unauthenticated on the shared one.
            status, reason = listener._count_reject(None, 404, "this lane takes pushes on /anpr/<camera-id> only",
                                                    "unknown_camera")
            self.close_connection = True
            self._reply(status, reason)
            return
        if not listener._open_upload(camera_id):
            status, reason = listener._count_reject(
                camera, 503, f"{listener.max_uploads_per_camera} uploads already open from "
                f"{'camera ' + repr(camera_id) if camera_id else 'the shared path'}", "busy")
            self.close_connection = True
            self._reply(status, reason, headers={"Retry-After": "1"})
            return
        try:
            self._post(camera_id, camera)
        finally:
            listener._close_upload(camera_id)

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/health":
            self._reply(200, json.dumps(self.listener.health()), "application/json")
        else:
            self._reply(404, "not found")

    def _post(self, camera_id: str, camera: CameraConfig | None) -> None:
        listener = self.listener
        try:
            body = self._read_body()
        except _BodyError as err:
            status, reason = listener._count_reject(camera, err.status, err.reason)
            self.close_connection = True
            self._reply(status, reason)
            return
        status, reason, vendor = listener._handle_push(camera_id, self.headers.get("Content-Type", ""), body)
        if vendor is not None and vendor.answer is not None:
            content_type, text = vendor.answer(status, reason)
            self._reply(status, text, content_type)
        else:
            self._reply(status, reason)

    def _read_body(self) -> bytes:
        """The request's body, by Content-Length or chunked (RFC 9112 sections 6 and 7.1)."""
        codings = [c.strip().lower() for c in ",".join(self.headers.get_all("Transfer-Encoding") or []).split(",")
                   if c.strip()]
        if codings:
            if codings != ["chunked"]:
                raise _BodyError(400, f"transfer coding {', '.join(codings)[:60]!r} not supported; "
                                      "send chunked or Content-Length")
            # A Content-Length beside chunked is ignored (RFC 9112 section 6.3); the
            # connection is closed after the answer, as a proxy might have read it otherwise.
            self.close_connection = True
            return self._read_chunked()
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not lengths:
            raise _BodyError(411, "Content-Length required (or Transfer-Encoding: chunked)")
        if len(lengths) > 1:
            raise _BodyError(400, "Content-Length given twice with different values")
        text = lengths.pop()
        if not (text.isascii() and text.isdigit()) or len(text) > 12:
            raise _BodyError(400, f"Content-Length {text[:20]!r} is not a number")
        length = int(text)
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"body of {length} bytes over {MAX_BODY_BYTES}")
        return self._read_exactly(length, "body")

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            if not line.endswith(b"\n"):
                raise _BodyError(400, "chunk size line cut short or longer than "
                                      f"{MAX_CHUNK_LINE_BYTES} bytes")
            size_text = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _BodyError(400, f"chunk size {size_text[:20].decode('latin-1')!r} is not hexadecimal")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise _BodyError(413, f"chunked body over {MAX_BODY_BYTES} bytes")
            body += self._read_exactly(size, "chunk")
            if self._read_exactly(2, "chunk end") != b"\r\n":
                raise _BodyError(400, "chunk not followed by CRLF")
        for _ in range(MAX_TRAILER_LINES):
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                return bytes(body)
            if not line.endswith(b"\n"):
                raise _BodyError(400, "chunked body ends without its last empty line")
        raise _BodyError(400, f"more than {MAX_TRAILER_LINES} trailer lines")

    def _read_exactly(self, length: int, what: str) -> bytes:
        data = self.rfile.read(length)
        if len(data) < length:
            raise _BodyError(400, f"{what} ended after {len(data)} of {length} bytes")
        return data

    def _timed_out(self) -> None:
        listener = self.listener
        self.close_connection = True
        if self._replied:
            return
        status, reason = listener._count_reject(
            self._camera, 408, f"request not complete within {listener.read_timeout_s:g} s", "timeouts")
        self._try_reply(status, reason)

    def _try_reply(self, status: int, text: str) -> None:
        with contextlib.suppress(OSError):  # the client is gone or not reading
            self._reply(status, text)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (malformed request line or headers, 414, 431, 501):
        # counted like any other bad input.
        self.listener._count_reject(self._camera, code, message or f"malformed HTTP request ({code})",
                                    "malformed_http")
        self.close_connection = True
        self._arm_write()
        self._replied = True
        super().send_error(code, message, explain)

    def _reply(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        data = (text + ("\n" if not text.endswith("\n") else "")).encode("utf-8")
        self._arm_write()
        self._replied = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _arm_write(self) -> None:
        # The deadline reader leaves the socket's timeout at what remained of the
        # request; an answer gets a full one, so a client that stops reading cannot hold it.
        self.connection.settimeout(self.listener.read_timeout_s)

    def log_message(self, format: str, *args: Any) -> None:
        # http.server writes every request to stderr; the listener logs what matters.
        log.debug("anpr_http " + format, *args)
