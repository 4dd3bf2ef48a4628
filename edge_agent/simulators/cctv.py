"""A CCTV camera on HTTP: an MJPEG stream of a generated lane scene.

Many IP cameras (Axis `/axis-cgi/mjpg/video.cgi`, Hikvision's MJPEG sub-stream, most
cheap cameras) serve motion JPEG as one long HTTP response of type
`multipart/x-mixed-replace; boundary=...`, each part a JPEG with its own
`Content-Type` and `Content-Length` headers (the format Netscape introduced for server
push; RFC 2046 section 5.1 gives the multipart body syntax). The agent reads it through
OpenCV's FFmpeg backend exactly as it reads a real camera, so this simulator is the same
door as the hardware.

One producer thread renders and encodes each frame once, at the configured rate; every
client is sent the latest frame. `drop()` cuts every open stream and can refuse new ones
for a while, to exercise the agent's reconnect path.

    sim = CctvSimulator(fps=10, width=1280, height=720).start()
    camera_url = sim.url      # http://127.0.0.1:PORT/stream.mjpg
    sim.drop(refuse_s=2.0)    # the camera "reboots"
    sim.stop()
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import click

log = logging.getLogger(__name__)

BOUNDARY = "bcpframe"


class CctvSimulator:
    """An MJPEG-over-HTTP camera serving a moving truck with a timestamp overlay."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fps: float = 10.0,
        width: int = 1280,
        height: int = 720,
        jpeg_quality: int = 80,
        name: str = "CCTV-SIM",
    ) -> None:
        if fps <= 0 or width < 64 or height < 48:
            raise ValueError("fps must be > 0 and the frame at least 64x48")
        self.host, self.fps, self.width, self.height = host, fps, width, height
        self.jpeg_quality, self.name = jpeg_quality, name
        self.frames_rendered = 0
        self.parts_sent = 0
        self.connections = 0
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._cond = threading.Condition()
        self._jpeg = b""
        self._seq = 0
        self._stopping = threading.Event()
        self._refuse_until = 0.0
        self._clients: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._background = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        import cv2  # noqa: F401  (fail early, before binding a port)

        self._background = lane_background(self.width, self.height)
        self._render_next(0.0)  # a frame is ready before the first client connects
        self._server = ThreadingHTTPServer((self.host, self._requested_port), self._handler_class())
        self._server.daemon_threads = True
        for target, name in ((self._server.serve_forever, "http"), (self._produce, "render")):
            thread = threading.Thread(target=target, name=f"cctv-sim-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._close_clients()
            self._server.server_close()
        for thread in self._threads:
            thread.join(5.0)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    @property
    def clients(self) -> int:
        with self._cond:
            return len(self._clients)

    def drop(self, refuse_s: float = 0.0) -> None:
        """Cut every open stream now; refuse new connections for `refuse_s` seconds."""
        self._refuse_until = time.monotonic() + refuse_s
        self._close_clients()

    # ------------------------------------------------------------------ internals

    def _close_clients(self) -> None:
        with self._cond:
            clients = list(self._clients)
            self._clients.clear()
            self._cond.notify_all()
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _produce(self) -> None:
        period_s = 1.0 / self.fps
        start = time.monotonic()
        next_at = start + period_s
        while not self._stopping.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stopping.wait(delay):
                return
            self._render_next(time.monotonic() - start)
            next_at += period_s
            # A stalled host must not make the producer burst to catch up.
            next_at = max(next_at, time.monotonic())

    def _render_next(self, t_s: float) -> None:
        import cv2

        frame = render_scene(self._background, t_s, self.frames_rendered, self.name)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:  # cannot happen for a uint8 BGR image; keep serving the last frame
            log.error("cctv_sim_encode_failed frame=%s", self.frames_rendered)
            return
        with self._cond:
            self._jpeg = buf.tobytes()
            self._seq += 1
            self.frames_rendered += 1
            self._cond.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args) -> None:
                log.debug("cctv_sim_http " + format, *args)

            def do_GET(self) -> None:
                if time.monotonic() < sim._refuse_until or sim._stopping.is_set():
                    # A rebooting camera: the TCP connection opens and closes with no answer.
                    self.close_connection = True
                    return
                path = self.path.split("?", 1)[0]
                if path == "/snapshot.jpg":
                    with sim._cond:
                        jpeg = sim._jpeg
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(jpeg)))
                    self.end_headers()
                    self.wfile.write(jpeg)
                    return
                if path not in ("/", "/stream.mjpg", "/video.mjpg"):
                    self.send_error(404)
                    return
                self._stream()

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                with sim._cond:
                    sim._clients.add(self.connection)
                    sim.connections += 1
                seen = 0
                try:
                    while True:
                        with sim._cond:
                            sim._cond.wait_for(
                                lambda last=seen: sim._seq != last or sim._stopping.is_set()
                                or self.connection not in sim._clients,
                                timeout=2.0,
                            )
                            if sim._stopping.is_set() or self.connection not in sim._clients:
                                return
                            if sim._seq == seen:
                                continue
                            seen, jpeg = sim._seq, sim._jpeg
                        head = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode("ascii")
                        self.wfile.write(head + jpeg + b"\r\n")
                        sim.parts_sent += 1
                except OSError:
                    return  # the client went away or drop() cut it
                finally:
                    with sim._cond:
                        sim._clients.discard(self.connection)

        return Handler


def lane_background(width: int, height: int):
    """Asphalt with a little grain, kerbs and lane marks: drawn once, copied per frame."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(4)
    frame = np.full((height, width, 3), 92, dtype=np.uint8)
    grain = rng.integers(-12, 13, size=(height, width, 1), dtype=np.int16)
    frame = np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    road_top, road_bottom = int(height * 0.35), int(height * 0.92)
    frame[:road_top] = (150, 130, 110)  # booth wall
    cv2.rectangle(frame, (0, road_bottom), (width, height), (170, 170, 170), -1)  # kerb
    dash = max(width // 16, 8)
    for x in range(0, width, dash * 2):
        cv2.rectangle(frame, (x, (road_top + road_bottom) // 2 - 3), (x + dash, (road_top + road_bottom) // 2 + 3),
                      (235, 235, 235), -1)
    return frame


def render_scene(background, t_s: float, frame_no: int, name: str = "CCTV-SIM"):
    """One frame: a tractor and trailer crossing the lane every 8 s, and the clock."""
    import cv2

    frame = background.copy()
    height, width = frame.shape[:2]
    scale = height / 720.0
    truck_w = int(width * 0.55)
    x = int(((t_s % 8.0) / 8.0) * (width + truck_w)) - truck_w
    base = int(height * 0.85)
    trailer_h, cab_w = int(260 * scale), int(truck_w * 0.22)
    cv2.rectangle(frame, (x, base - trailer_h), (x + truck_w - cab_w - 10, base), (40, 60, 160), -1)
    cv2.rectangle(frame, (x + truck_w - cab_w, base - int(trailer_h * 0.8)), (x + truck_w, base), (200, 200, 210), -1)
    cv2.rectangle(frame, (x + truck_w - int(cab_w * 0.6), base - int(trailer_h * 0.75)),
                  (x + truck_w - 6, base - int(trailer_h * 0.45)), (90, 60, 40), -1)  # windscreen
    radius = max(int(34 * scale), 4)
    for wheel_x in (x + int(truck_w * 0.12), x + int(truck_w * 0.25), x + int(truck_w * 0.88)):
        cv2.circle(frame, (wheel_x, base), radius, (25, 25, 25), -1)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    font_scale = max(0.4, 0.9 * scale)
    cv2.putText(frame, f"{name}  {stamp}  #{frame_no}", (int(16 * scale), int(40 * scale)),
                cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return frame


@click.command("cctv")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=8554, show_default=True, help="TCP port (0 = any free port).")
@click.option("--fps", default=10.0, show_default=True, help="Frames per second.")
@click.option("--size", default="1280x720", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--quality", default=80, show_default=True, help="JPEG quality of the stream.")
def simulate_cctv(host: str, port: int, fps: float, size: str, quality: int) -> None:
    """Serve an MJPEG CCTV stream of a lane (a truck crossing, a clock) until Ctrl-C."""
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter("WIDTHxHEIGHT, e.g. 1920x1080", param_hint="--size") from None
    sim = CctvSimulator(host=host, port=port, fps=fps, width=width, height=height, jpeg_quality=quality)
    sim.start()
    click.echo(f"CCTV stream at {sim.url} ({width}x{height}, {fps:g} frames/s); snapshot at "
               f"http://{host}:{sim.port}/snapshot.jpg; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    simulate_cctv()
