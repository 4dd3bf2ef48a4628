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


def test_a_notify_socket_nobody_reads_never_blocks_the_core_loop(notify, caplog):
    path, _ = notify  # bound, never read: the kernel queues a few datagrams, then refuses more
    watchdog = Watchdog(0.002, path)
    sent = run_core(watchdog, 0.5)  # would hang at the queue's limit with a blocking socket
    assert sent >= 1 and "watchdog_notify_dropped" in caplog.text  # the loop ran on; what did not fit, dropped
    watchdog.close()


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


def test_a_scale_reader_stuck_in_a_call_stops_the_pings_and_resumes_them(notify):
    """The production reader on a real TCP line: its thread beats at every turn; stuck in
    a call (here the callback it hands readings to) it stops, and so do the pings."""
    from testkit.waiting import wait_for

    from edge_agent.config import ScaleConfig
    from edge_agent.devices.scale.transport import ScaleReader
    from edge_agent.simulators.scale import ScaleSimulator

    path, received = notify
    watchdog = Watchdog(0.1, path)
    sim = ScaleSimulator("toledo", tcp_port=0, frame_interval_s=0.02)
    sim.start()
    stuck, released, readings = threading.Event(), threading.Event(), []

    def post(event) -> None:
        readings.append(event)
        if stuck.is_set():
            released.wait(30)  # a callback that does not come back: the reader's thread hangs here

    reader = ScaleReader("L1", ScaleConfig(url=sim.url, protocol="toledo"), post)
    reader.max_silence_s = 0.5
    for name, limit in reader.watched().items():
        watchdog.register(name, max_silence_s=limit)
    reader.heartbeat = watchdog.beat
    reader.start()
    try:
        wait_for(lambda: len(readings) > 3, 10, what="readings from the simulator")
        assert run_core(watchdog, 0.3) > 0
        stuck.set()
        wait_for(lambda: (watchdog.tick() or True) and watchdog.stalled == ["scale-L1"], 10, what="the stall noticed")
        received()
        assert run_core(watchdog, 0.3) == 0 and "WATCHDOG=1" not in received()
        stuck.clear()
        released.set()
        before = watchdog.pings
        wait_for(lambda: watchdog.tick() and watchdog.pings > before, 10, what="pings again")
        assert watchdog.stalled == [] and "WATCHDOG=1" in received()
    finally:
        released.set()
        reader.stop()
        sim.stop()
        watchdog.close()


def test_the_agent_has_the_watchdog_hear_from_every_device_thread(tmp_path):
    """Scales, plate cameras (the listener and each pulled camera), CCTV and the link."""
    from gpiozero.pins.mock import MockFactory

    from edge_agent.agent import Agent
    from edge_agent.config import (
        AgentConfig,
        CameraConfig,
        GateConfig,
        LaneConfig,
        MetricsConfig,
        PolicyConfig,
        ScaleConfig,
        SiteConfig,
        SyncConfig,
    )

    config = AgentConfig(
        site=SiteConfig(id="xk-dog", region="xk-rs", data_dir=tmp_path),
        lanes=[LaneConfig(id="L1", scale=ScaleConfig(url="socket://127.0.0.1:9", protocol="toledo"),
                          cameras=[CameraConfig(id="L1-front", vendor="hikvision"),
                                   CameraConfig(id="L1-pull", vendor="hikvision", mode="pull",
                                                url="http://127.0.0.1:9/alertStream"),
                                   CameraConfig(id="L1-scene", kind="cctv", role="scene",
                                                url="http://127.0.0.1:9/stream.mjpg")],
                          gate=GateConfig(pin_factory="mock"))],
        policy=PolicyConfig(random_secret="watchdog-test-secret-01"),
        sync=SyncConfig(enabled=True, broker_port=9),
        metrics=MetricsConfig(port=0),
    )
    agent = Agent(config, pin_factory=MockFactory()).start()
    try:
        assert set(agent.watchdog.sources) == {"gate-L1", "scale-L1", "anpr-L1", "anpr-pull-L1-pull",
                                               "cctv-L1-L1-scene", "sync-xk-dog", "evidence-upload"}
    finally:
        agent.stop()
