"""Real parts for the sync tests: a private mosquitto on a free loopback port with a
configuration the test writes, a TCP proxy that cuts connections on demand, and the
central hub (in this process, or as the real `edge-agent central serve`)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path

import pytest
from testkit.processes import serve_central

REPO = Path(__file__).resolve().parents[2]


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every open connection at once,
    as a failing radio link or a NAT timeout would; `hold()` refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.refusing = threading.Event()
        self.cuts = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            if self.refusing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.stopped.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if sock is a else a).sendall(data)
        except OSError:
            pass
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.cuts += 1

    def hold(self, refusing: bool) -> None:
        if refusing:
            self.refusing.set()
            self.cut()
        else:
            self.refusing.clear()

    def close(self) -> None:
        self.stopped.set()
        self.cut()
        self.listener.close()
        self.thread.join(2)


@pytest.fixture()
def proxy(broker):
    p = TcpProxy(broker.port)
    yield p
    p.close()


@pytest.fixture()
def hub(broker, tmp_path: Path):
    """The central hub in this process (fast); `central_serve` runs the real command."""
    from edge_agent.central.broker import Endpoint
    from edge_agent.central.hub import Hub

    h = Hub(Endpoint(port=broker.port), tmp_path / "central.db", client_id=f"rau-hub-{os.getpid()}")
    h.start()
    assert h.connected.wait(15)
    yield h
    h.stop()


@pytest.fixture()
def central_serve(broker, tmp_path: Path):
    """The real `edge-agent central serve` against the test broker; yields its db path."""
    db = tmp_path / "central-served.db"
    proc = serve_central(broker.port, db, tmp_path)
    yield db
    proc.terminate()
