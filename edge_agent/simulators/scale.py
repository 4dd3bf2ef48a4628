"""A weighbridge indicator on a pty or a TCP port, speaking any protocol of the registry.

It comes in through the same door as hardware: the agent's `scale.url` is the pty path
(a symlink, as /dev/serial/by-id/ names are) or `socket://127.0.0.1:PORT`. A scenario
drives it with `drive_on` (a ramp with motion, a settling oscillation, then small
noise), `drive_off` and `set_weight`, and injects faults: garbage bytes, a checksum
error, dropped bytes, an unplugged cable. Every method is thread-safe.

    sim = ScaleSimulator("toledo", tcp_port=0, frame_interval_s=0.02, seed=1)
    url = sim.start()
    sim.drive_on(24_000, ramp_s=0.3)
    ...
    sim.drive_off(ramp_s=0.2); sim.stop()
"""

from __future__ import annotations

import errno
import logging
import math
import os
import random
import select
import shutil
import socket
import tempfile
import threading
import time
import tty
from pathlib import Path

from edge_agent.devices.scale.frame import Display
from edge_agent.devices.scale.protocols import spec_for

log = logging.getLogger(__name__)

CAPACITY_KG = 60_000.0


class ScaleSimulator:
    def __init__(self, protocol: str, *, tcp_port: int | None = None, pty: bool = False,
                 frame_interval_s: float = 0.14, seed: int | None = None, division_kg: float = 20.0) -> None:
        if pty == (tcp_port is not None):
            raise ValueError("give exactly one of tcp_port (0 = any free port) or pty=True")
        self.spec = spec_for(protocol)
        self.tcp_port = tcp_port
        self.use_pty = pty
        self.frame_interval_s = frame_interval_s
        self.division_kg = division_kg
        self.url = ""
        self.frames_sent = 0
        self.connections = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # weight model: a ramp from start to target, then settling, then noise
        self._from_kg = 0.0
        self._to_kg = 0.0
        self._t0 = 0.0
        self._ramp_s = 0.0
        self._settle_s = 0.0
        self._noise_kg = 0.0
        self._last_shown: float | None = None
        # faults waiting for the next frame
        self._garbage = b""
        self._bad_checksum = False
        self._drop = 0
        self._outage_until = 0.0
        self._outage_pending = False
        # transport
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._tmpdir: str | None = None
        self._inbox = bytearray()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        if self.use_pty:
            self._tmpdir = tempfile.mkdtemp(prefix="scale-sim-")
            self._open_pty()
            self.url = str(Path(self._tmpdir) / f"usb-sim-{self.spec.name}-if00")
            self._link_pty()
        else:
            self._listen(self.tcp_port or 0)
            self.url = f"socket://127.0.0.1:{self.tcp_port}"
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"scale-sim-{self.spec.name}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._close_transport()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def connected(self) -> bool:
        return self._conn is not None if not self.use_pty else self._master is not None

    # ------------------------------------------------------------------ script API

    def drive_on(self, target_kg: float, ramp_s: float = 3.0, settle_noise_kg: float | None = None) -> None:
        """A truck drives on: a ramp (motion), a settling swing (motion), then steady noise."""
        self._move(target_kg, ramp_s, settle_noise_kg)

    def drive_off(self, ramp_s: float = 2.0) -> None:
        self._move(0.0, ramp_s, 0.0)

    def set_weight(self, kg: float) -> None:
        """Jump to `kg` with no motion and no noise (a still load, or a drifted zero)."""
        with self._lock:
            self._from_kg = self._to_kg = float(kg)
            self._t0 = time.monotonic()
            self._ramp_s = self._settle_s = 0.0
            self._noise_kg = 0.0

    def inject_garbage(self, n: int) -> None:
        with self._lock:
            self._garbage += bytes(self._rng.randrange(256) for _ in range(n))

    def inject_bad_checksum(self) -> None:
        with self._lock:
            self._bad_checksum = True

    def drop_bytes(self, n: int) -> None:
        with self._lock:
            self._drop += n

    def disconnect(self, duration_s: float = 1.0) -> None:
        """Unplug: drop the connection (TCP) or remove the pty, and come back after duration_s."""
        with self._lock:
            self._outage_until = time.monotonic() + duration_s
            self._outage_pending = True

    # ------------------------------------------------------------------ weight model

    def _move(self, target_kg: float, ramp_s: float, noise_kg: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            self._from_kg = self._value(now)[0]
            self._to_kg = float(target_kg)
            self._t0 = now
            self._ramp_s = max(0.0, ramp_s)
            # The suspension swings for a while after the ramp; at least two frames show it.
            self._settle_s = max(0.4 * ramp_s, 2.5 * self.frame_interval_s)
            self._noise_kg = 0.4 * self.division_kg if noise_kg is None else noise_kg

    def _value(self, now: float) -> tuple[float, bool]:
        """(true load, moving) at `now`; the caller holds the lock."""
        t = now - self._t0
        delta = self._to_kg - self._from_kg
        if t < self._ramp_s:
            bump = self._rng.gauss(0, 0.02 * abs(delta))  # axles crossing the approach
            return self._from_kg + delta * t / self._ramp_s + bump, True
        t -= self._ramp_s
        if t < self._settle_s and delta:
            amplitude = max(3 * self.division_kg, 0.01 * abs(delta)) * (1 - t / self._settle_s)
            return self._to_kg + amplitude * math.sin(t * 2 * math.pi * 1.5), True
        noise = self._rng.uniform(-self._noise_kg, self._noise_kg) if self._noise_kg else 0.0
        return self._to_kg + noise, False

    def _display(self) -> Display:
        with self._lock:
            value, moving = self._value(time.monotonic())
        shown = round(value / self.division_kg) * self.division_kg
        if self._last_shown is not None and abs(shown - self._last_shown) > self.division_kg:
            moving = True  # an indicator's own motion detection: more than a division per update
        self._last_shown = shown
        return Display(value_kg=float(shown) + 0.0, motion=moving, over=abs(shown) > CAPACITY_KG,
                       division_kg=self.division_kg)

    def _next_frame(self, frame: bytes) -> bytes:
        with self._lock:
            garbage, self._garbage = self._garbage, b""
            if self._bad_checksum:
                self._bad_checksum = False
                frame = self._corrupt(frame)
            if self._drop:
                n = min(self._drop, len(frame) - 1)
                self._drop = 0
                mid = len(frame) // 2
                frame = frame[:mid - n // 2] + frame[mid - n // 2 + n:]
        return garbage + frame

    def _corrupt(self, frame: bytes) -> bytes:
        if self.spec.checksum == "toledo":
            bad = (frame[-1] ^ 0x01) & 0x7F
            return frame[:-1] + bytes([bad if bad not in (0x02, 0x0D) else (frame[-1] ^ 0x04) & 0x7F])
        if self.spec.checksum == "xor":
            return frame[:-2] + (b"0" if frame[-2:-1] != b"0" else b"1") + frame[-1:]
        # No checksum in this format: a flipped digit is what line noise would do.
        digit = next((i for i in range(1, len(frame)) if 0x30 <= frame[i] <= 0x39), 1)
        return frame[:digit] + b"?" + frame[digit + 1:]

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self._outages(now)
            self._accept()
            if self.spec.request is not None:
                self._serve_commands()
            else:
                self._receive()  # a streaming indicator ignores what it is sent (and sees EOF)
            if self.spec.request is None and now >= next_frame:
                self._send(self._next_frame(self.spec.encode(self._display())))
                next_frame = max(next_frame + self.frame_interval_s, now)
            self._wait(min(0.01, max(0.0, next_frame - time.monotonic())))

    def _wait(self, timeout_s: float) -> None:
        fds = [fd for fd in (self._master, self._conn, self._listener) if fd is not None]
        try:
            select.select(fds, [], [], timeout_s) if fds else time.sleep(timeout_s)
        except (OSError, ValueError):
            time.sleep(timeout_s)

    def _outages(self, now: float) -> None:
        with self._lock:
            start, self._outage_pending = self._outage_pending, False
            until = self._outage_until
        if start:
            log.info("scale_sim_unplugged url=%s", self.url)
            self._close_transport()
        elif until and now >= until and not self.connected and self._listener is None:
            with self._lock:
                self._outage_until = 0.0
            if self.use_pty:
                self._open_pty()
                self._link_pty()
            else:
                self._listen(self.tcp_port)
            log.info("scale_sim_plugged url=%s", self.url)

    def _accept(self) -> None:
        if self._listener is None:
            return
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, OSError):
            return
        # One client at a time, the newest wins, as on a serial device server: a reader
        # that reconnects after its host lost the link must not wait for the old socket.
        self._drop_client()
        conn.settimeout(1.0)
        self._conn = conn
        self.connections += 1
        self._inbox.clear()

    def _send(self, data: bytes) -> None:
        try:
            if self.use_pty and self._master is not None:
                os.write(self._master, data)
            elif self._conn is not None:
                self._conn.sendall(data)
            else:
                return
            self.frames_sent += 1
        except BlockingIOError:
            pass  # nobody reads the pty: the bytes are lost, as on a real line
        except OSError:
            self._drop_client()

    def _serve_commands(self) -> None:
        data = self._receive()
        if not data:
            return
        self._inbox += data
        end = self.spec.command_end
        while (i := self._inbox.find(end)) >= 0:
            command = bytes(self._inbox[:i]).strip(b"\r\n")
            del self._inbox[: i + len(end)]
            if command:
                self._send(self._next_frame(self.spec.respond(command, self._display())))
        del self._inbox[:-64]

    def _receive(self) -> bytes:
        try:
            if self.use_pty and self._master is not None:
                return os.read(self._master, 1024)
            if self._conn is not None:
                r, _, _ = select.select([self._conn], [], [], 0)
                if r:
                    data = self._conn.recv(1024)
                    if not data:
                        self._drop_client()
                    return data
        except BlockingIOError:
            return b""
        except OSError as err:
            if self.use_pty and err.errno == errno.EIO:
                return b""  # no reader has the pty open
            self._drop_client()
        return b""

    def _drop_client(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ transports

    def _listen(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(2)
        sock.setblocking(False)
        self.tcp_port = sock.getsockname()[1]
        self._listener = sock

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: bytes as a UART carries them
        os.set_blocking(master, False)
        self._master, self._slave = master, slave

    def _link_pty(self) -> None:
        link = Path(self._tmpdir) / f"usb-sim-{self.spec.name}-if00"
        tmp = link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self._slave))
        tmp.replace(link)

    def _close_transport(self) -> None:
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self._tmpdir:
            (Path(self._tmpdir) / f"usb-sim-{self.spec.name}-if00").unlink(missing_ok=True)
