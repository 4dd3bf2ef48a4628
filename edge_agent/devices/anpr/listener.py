"""The lane's HTTP listener for plate cameras that push, and the owner of polled ones.

One listener per lane (stdlib `ThreadingHTTPServer`, a thread per request: cameras
push a few events a minute, and it costs no extra package). Routes::

    POST /anpr/<camera-id>   one event from that camera, parsed as its vendor's
                             (vendors.py: hikvision XML, JSON or multipart; generic JSON)
    POST /anpr  or  /        the same, the vendor told by the body, the camera named in it
    GET  /health             counters as JSON

Answers: 200 accepted (or a heartbeat ignored), 400 with the reason as text for a
malformed body, 401 with a challenge when the camera's `push_auth` is not met, 404 for
an unknown camera, 413 for a body over the limit. Nothing a camera sends can stop the
listener: every failure is a value, counted and logged.

Each accepted read is posted as a `models.PlateRead` (normal-form text, raw text,
confidence, the camera's role). JPEGs that came with it go to `on_image(lane, camera,
event_id, kind, jpeg)`, the raw body to `on_payload(lane, camera, event_id,
content_type, body)`, both optional, for the evidence store; `event_id` is the
PlateRead's id.

Cameras with `mode = "pull"` are polled by `pull.PullCamera` workers started and
stopped with the listener; their reads take the same path.
"""

from __future__ import annotations

import json
import logging
import threading
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
from edge_agent.devices.anpr.vendors import VENDORS, vendor_for
from edge_agent.errors import ConfigError
from edge_agent.models import PlateRead, PlateRole, Rejected
from edge_agent.plates.normal_form import format_countries, normalize_plate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
SERVER_SILENCE_S = 10.0  # the server thread turns every 0.2 s; requests run on their own threads
ImageSink = Callable[[str, str, str, str, bytes], None]
PayloadSink = Callable[[str, str, str, str, bytes], None]

_ROLES = {"tractor": PlateRole.TRACTOR, "trailer": PlateRole.TRAILER}


class AnprListener:
    """`start()` binds and serves in a thread; `.url` and `.port` are valid after it."""

    def __init__(self, lane_id: str, cameras: list[CameraConfig], post: Callable[[object], None],
                 host: str = "127.0.0.1", port: int = 0, *, on_image: ImageSink | None = None,
                 on_payload: PayloadSink | None = None, recognizer: PlateRecognizer | None = None) -> None:
        self.lane_id = lane_id
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
        self._server: ThreadingHTTPServer | None = None
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
        self._server = _Server((self.host or "127.0.0.1", self.port), handler)
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
                                                         "low_confidence", "unknown_camera")},
                "last_reject": self.last_reject,
                "cameras": {cid: dict(v) for cid, v in self.by_camera.items()},
                "pull": [p.health() for p in self._pullers],
            }

    # ------------------------------------------------------------------ processing

    def handle_push(self, camera_id: str, content_type: str, body: bytes) -> tuple[int, str]:
        """One pushed body -> (HTTP status, reason). Never raises."""
        camera = self.cameras.get(camera_id) if camera_id else None
        if camera_id and camera is None:
            return self._count_reject(None, 404, f"unknown camera {camera_id!r}", "unknown_camera")
        if camera is not None and camera.mode == "pull":
            return self._count_reject(camera, 404, f"camera {camera_id!r} is polled, not pushing", "unknown_camera")
        vendor = VENDORS.get(camera.vendor) if camera is not None else vendor_for(content_type, body)
        if vendor is None:
            return self._count_reject(camera, 404, f"camera {camera_id!r} has an unknown vendor", "unknown_camera")
        parsed = vendor.parse_push(body, content_type)
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
        with self._lock:
            self.counters["accepted"] += 1
            stats = self.by_camera.setdefault(camera.id, {"accepted": 0, "rejected": 0})
            stats["accepted"] += 1
            stats["last_at"] = datetime.now(UTC).isoformat()
            stats["last_plate"] = text
        log.info("anpr_plate lane=%s camera=%s plate=%s raw=%r confidence=%.2f role=%s", self.lane_id, camera.id,
                 text, raw, best.confidence, read.role.value)
        return 200, f"accepted {read.id}"

    def local_recognizer(self) -> PlateRecognizer:
        if self._recognizer is None:
            from edge_agent.devices.anpr.recognition import shared_local_recognizer

            self._recognizer = shared_local_recognizer()
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
    on_turn: Callable[[], None] | None = None

    def service_actions(self) -> None:
        # Called by serve_forever at every turn of its loop (poll_interval): the thread is alive.
        if self.on_turn is not None:
            self.on_turn()


def _call_safely(fn: Callable[..., Any], *args: Any, what: str) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("anpr_callback_failed callback=%s", what)


class _Handler(BaseHTTPRequestHandler):
    listener: AnprListener
    server_version = "edge-agent-anpr"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        try:
            self._post()
        except Exception:  # the socket went away mid-answer, or a bug: never the server thread
            log.exception("anpr_request_failed lane=%s path=%s", self.listener.lane_id, self.path)
            self.close_connection = True

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/health":
            self._reply(200, json.dumps(self.listener.health()), "application/json")
        else:
            self._reply(404, "not found")

    def _post(self) -> None:
        listener = self.listener
        path = urlsplit(self.path).path.rstrip("/")
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] != "anpr" or len(parts) > 2:
            self._drain()
            self._reply(404, "not found: POST /anpr/<camera-id>")
            return
        camera_id = parts[1] if len(parts) == 2 else ""
        camera = listener.cameras.get(camera_id)
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            status, reason = listener._count_reject(camera, 411, "Content-Length required")
            self.close_connection = True
            self._reply(status, reason)
            return
        if length < 0 or length > MAX_BODY_BYTES:
            status, reason = listener._count_reject(camera, 413, f"body of {length} bytes over {MAX_BODY_BYTES}")
            self.close_connection = True
            self._reply(status, reason)
            return
        body = self.rfile.read(length)
        if camera is not None and camera.push_auth != "none":
            verdict = listener.auth.check(camera.push_auth, self.headers.get("Authorization", ""),
                                          username=camera.username, password=camera.password,
                                          method="POST", uri=self.path)
            if verdict:
                listener._count_unauthorized(camera, verdict)
                challenge = listener.auth.challenge(camera.push_auth, stale=verdict == "stale")
                self._reply(401, "unauthorized", headers={"WWW-Authenticate": challenge})
                return
        elif camera is None and any(c.push_auth != "none" for c in listener.cameras.values()):
            # Credentials are per camera: a lane with authenticated cameras takes pushes
            # only on the camera's own path, never unauthenticated on the shared one.
            status, reason = listener._count_reject(None, 404, "this lane takes pushes on /anpr/<camera-id> only",
                                                    "unknown_camera")
            self._reply(status, reason)
            return
        status, reason = listener.handle_push(camera_id, self.headers.get("Content-Type", ""), body)
        self._reply(status, reason)

    def _drain(self) -> None:
        try:
            length = min(int(self.headers.get("Content-Length", "0")), MAX_BODY_BYTES)
        except ValueError:
            self.close_connection = True
            return
        self.rfile.read(length)

    def _reply(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        data = (text + ("\n" if not text.endswith("\n") else "")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # http.server writes every request to stderr; the listener logs what matters.
        log.debug("anpr_http " + format, *args)
