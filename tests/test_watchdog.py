"""The systemd watchdog through a fake NOTIFY_SOCKET: a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from edge_agent.watchdog import Watchdog


@pytest.fixture
def notify(tmp_path):
    """A socket standing in for systemd's; yields (path, receive-all function)."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)

    def received() -> list[str]:
        out = []
        while True:
            try:
                out.append(sock.recv(4096).decode())
            except TimeoutError:
                return out

    yield path, received
    sock.close()


def run_core(watchdog: Watchdog, seconds: float) -> int:
    """A core loop: tick every 10 ms; returns how many pings it sent."""
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sent += watchdog.tick()
        time.sleep(0.01)
    return sent


def test_no_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    watchdog = Watchdog(1.0)
    assert not watchdog.enabled
    watchdog.ready()
    watchdog.status("x")
    assert watchdog.tick() is False and watchdog.pings == 0


def test_reads_the_socket_from_the_environment(monkeypatch, notify):
    path, received = notify
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    watchdog = Watchdog(1.0)
    watchdog.ready("2 lanes")
    watchdog.stopping()
    assert received() == ["READY=1\nSTATUS=2 lanes", "STOPPING=1\nSTATUS=stopping"]
    watchdog.close()


def test_pings_at_half_the_interval_while_every_source_beats(notify):
    path, received = notify
    watchdog = Watchdog(0.2, path)
    watchdog.register("scale-L1", max_silence_s=0.5)
    stop = threading.Event()

    def device() -> None:
        while not stop.wait(0.02):
            watchdog.beat("scale-L1")

    thread = threading.Thread(target=device)
    thread.start()
    try:
        sent = run_core(watchdog, 0.6)
    finally:
        stop.set()
        thread.join()
    messages = received()
    assert sent == len(messages) == watchdog.pings
    assert set(messages) == {"WATCHDOG=1"}
    # 0.6 s at one ping per 0.1 s at most: rate-limited although the loop ticked ~60 times.
    assert 2 <= sent <= 7
    watchdog.close()


def test_pings_stop_when_a_device_thread_stalls_and_resume_after(notify):
    path, received = notify
    watchdog = Watchdog(0.1, path)
    watchdog.register("scale-L1", max_silence_s=0.2)
    watchdog.register("gate-L1", max_silence_s=0.2)
    stalled = threading.Event()
    stop = threading.Event()

    def device(source: str, stalls: bool) -> None:
        while not stop.wait(0.01):
            if not (stalls and stalled.is_set()):
                watchdog.beat(source)

    threads = [threading.Thread(target=device, args=("scale-L1", True)),
               threading.Thread(target=device, args=("gate-L1", False))]
    for t in threads:
        t.start()
    try:
        assert run_core(watchdog, 0.3) > 0
        received()
        stalled.set()  # the scale reader hangs (a blocked read, a deadlock ...)
        time.sleep(0.3)
        assert run_core(watchdog, 0.4) == 0
        messages = received()
        assert "WATCHDOG=1" not in messages
        assert "STATUS=stalled: scale-L1" in messages
        assert watchdog.stalled == ["scale-L1"]
        stalled.clear()
        assert run_core(watchdog, 0.3) > 0
        assert "STATUS=running" in received()
    finally:
        stop.set()
        for t in threads:
            t.join()
        watchdog.close()


def test_abstract_namespace_socket():
    name = f"edge-agent-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        watchdog = Watchdog(1.0, "@" + name)
        assert watchdog.tick()
        assert sock.recv(100) == b"WATCHDOG=1"
        watchdog.close()
    finally:
        sock.close()


def test_interval_from_watchdog_usec():
    watchdog = Watchdog.from_environ({"WATCHDOG_USEC": "20000000"})
    assert watchdog.interval_s == 20.0 and not watchdog.enabled


def test_socket_gone_is_logged_not_raised(tmp_path, caplog):
    watchdog = Watchdog(0.01, str(tmp_path / "nobody-listens"))
    assert watchdog.tick() is False
    assert "watchdog_notify_failed" in caplog.text


def test_gate_thread_heartbeat_keeps_the_watchdog_fed(notify):
    from gpiozero.pins.mock import MockFactory

    from edge_agent.config import GateConfig
    from edge_agent.devices.gate.controller import GateController
    from edge_agent.simulators.barrier import simulated_barrier

    path, _ = notify
    watchdog = Watchdog(0.1, path)
    watchdog.register("gate-L1", max_silence_s=0.5)
    factory = MockFactory()
    gate = GateController("L1", GateConfig(pin_factory="mock"), lambda e: None, pin_factory=factory,
                          heartbeat=lambda: watchdog.beat("gate-L1"), equipment=simulated_barrier())
    try:
        time.sleep(0.6)  # longer than max_silence_s: only the gate thread's beats keep it fresh
        assert run_core(watchdog, 0.3) > 0
    finally:
        gate.close()
        factory.close()
    time.sleep(0.6)  # the gate thread is gone: no more beats
    assert run_core(watchdog, 0.3) == 0
    watchdog.close()
