"""ScaleReader through real TCP sockets and real ptys against the simulator: weighings,
unplug and reconnect, faults on the line, polled protocols and a dead line."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import datetime

import pytest

from edge_agent.models import ScaleEmptied, WeightReading, WeightStable

LOGGER = "edge_agent.devices.scale.transport"


def messages(caplog, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(event + " ")]


def weigh(sim, events, wait, target_kg: float, count: int) -> WeightStable:
    # The zero check: the reader must have seen the empty bridge before the truck.
    wait(lambda: len(events.of("weight_reading")) > 10 and abs(events.of("weight_reading")[-1].value_kg) < 100)
    sim.drive_on(target_kg, ramp_s=0.3)
    stable = wait(lambda: len(events.of("weight_stable")) >= count and events.of("weight_stable"))
    return stable[count - 1]


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_truck_weighed_once_with_raw_evidence_then_emptied(simulator, reader, wait, transport):
    sim = simulator("toledo", **({"pty": True} if transport == "pty" else {"tcp_port": 0}))
    r, events = reader(sim.url)
    wait(lambda: r.health()["connected"] and r.health()["frames"] > 10)
    stable = weigh(sim, events, wait, 24000, 1)
    assert isinstance(stable, WeightStable)
    assert stable.gross_kg == 24000.0 and stable.lane == "L1" and stable.division_kg == 20.0
    frames = [bytes.fromhex(h) for h in stable.raw_frames]
    assert len(frames) >= 4 and all(f.startswith(b"\x02") and len(f) == 18 for f in frames)
    sim.drive_off(ramp_s=0.2)
    wait(lambda: events.of("scale_emptied"))
    assert len(events.of("weight_stable")) == 1
    readings = events.of("weight_reading")
    assert all(isinstance(e, WeightReading) and e.raw for e in readings)
    assert any(e.stable is False for e in readings)  # the ramp showed motion
    assert r.health()["last_stable_kg"] == 24000.0


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_unplug_and_reconnect_without_restarting(simulator, reader, wait, transport):
    sim = simulator("toledo", **({"pty": True} if transport == "pty" else {"tcp_port": 0}))
    r, events = reader(sim.url)
    weigh(sim, events, wait, 24000, 1)
    sim.disconnect(duration_s=0.8)
    wait(lambda: not r.health()["connected"])
    wait(lambda: r.health()["connected"] and r.health()["reconnects"] >= 1)
    sim.drive_off(ramp_s=0.2)
    wait(lambda: events.of("scale_emptied"))
    assert len(events.of("weight_stable")) == 1  # the same truck across the outage: one weighing
    second = weigh(sim, events, wait, 31000, 2)
    assert second.gross_kg == 31000.0


def test_line_faults_are_counted_and_never_weigh(simulator, reader, wait):
    sim = simulator("toledo")
    r, events = reader(sim.url)
    wait(lambda: r.health()["frames"] > 20)
    for _ in range(5):
        before = r.health()["rejected"]
        sim.inject_bad_checksum()
        wait(lambda before=before: r.health()["rejected"] > before)
        sim.drop_bytes(3)
        sim.inject_garbage(25)
        wait(lambda: r.health()["skipped_bytes"] > 0)
    health = r.health()
    assert health["rejected"] >= 5 and health["connected"]
    assert events.of("weight_stable") == []
    stable = weigh(sim, events, wait, 15000, 1)
    assert stable.gross_kg == 15000.0


@pytest.mark.parametrize("protocol", ["mt-sics", "sma"])
def test_polled_protocols_over_a_pty(simulator, reader, wait, protocol):
    sim = simulator(protocol, pty=True)
    r, events = reader(sim.url, protocol=protocol, poll_interval_s=0.02)
    wait(lambda: r.health()["frames"] > 10)
    stable = weigh(sim, events, wait, 27000, 1)
    assert stable.gross_kg == 27000.0


@pytest.mark.parametrize("protocol", ["and", "rlws", "xk3190", "xk3190-reversed"])
def test_stream_protocols_over_tcp(simulator, reader, wait, protocol):
    sim = simulator(protocol)
    # No motion flag in XK3190 frames: the window must outlast the settling swing.
    r, events = reader(sim.url, protocol=protocol, stable_window_s=0.4)
    wait(lambda: r.health()["frames"] > 10)
    stable = weigh(sim, events, wait, 19000, 1)
    assert stable.gross_kg == 19000.0


def test_silent_line_is_dropped_and_reopened(reader, wait):
    # A serial server that accepts and then says nothing: a dead line, not an error.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        r, _ = reader(f"socket://127.0.0.1:{server.getsockname()[1]}", silence_timeout_s=0.3)
        wait(lambda: len(accepted) >= 3)
        assert r.health()["reconnects"] >= 2 and r.health()["frames"] == 0
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


def test_absent_device_retries_with_backoff_and_stops_promptly(reader, wait, tmp_path, caplog):
    missing = tmp_path / "ttyUSB-absent"
    r, _ = reader(str(missing))
    wait(lambda: r.health()["connected"] is False)
    import time

    time.sleep(1.0)
    downs = [rec for rec in caplog.records if "scale_unavailable" in rec.getMessage()]
    assert len(downs) == 1  # logged once, not on every retry
    r.stop(timeout_s=5)
    assert r._thread is None


def test_reader_emits_emptied_only_after_a_load(simulator, reader, wait):
    sim = simulator("toledo")
    r, events = reader(sim.url)
    wait(lambda: r.health()["frames"] > 30)
    assert events.of("scale_emptied") == [] and events.of("weight_stable") == []
    assert all(isinstance(e, WeightReading) for e in events.items)
    assert not isinstance(events.items[0], ScaleEmptied)


def test_bad_frames_are_logged_at_a_limited_rate(simulator, reader, wait, caplog):
    sim = simulator("xk3190")
    r, _ = reader(sim.url, protocol="xk3190")
    wait(lambda: r.health()["frames"] > 10)
    for n in range(1, 9):
        sim.inject_bad_checksum()
        wait(lambda n=n: r.health()["rejected"] >= n)
    warnings = [rec for rec in caplog.records if "scale_frame_rejected" in rec.getMessage()]
    assert r.health()["rejected"] >= 8
    assert len(warnings) == 1 and "bad checksum" in warnings[0].getMessage()
    # What the log left out is still at hand: the newest rejected frame, whole, in the health.
    last = r.health()["last_reject"]
    assert "bad checksum" in last["reason"]
    frame = bytes.fromhex(last["raw"])
    assert len(frame) == 12 and frame[0] == 0x02 and frame[-1] == 0x03, frame


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(simulator, reader, wait, transport, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    sim = simulator("toledo", **({"pty": True} if transport == "pty" else {"tcp_port": 0}))
    r, _ = reader(sim.url)
    wait(lambda: r.health()["connected"] and r.health()["frames"] > 5)
    sim.disconnect(duration_s=600)
    # The lost link, then at least three reopen attempts that failed while it was away.
    wait(lambda: r.health()["link_errors"] >= 4)
    assert r.health()["connected"] is False and r.health()["reconnects"] == 0
    sim.disconnect(duration_s=0)  # the outage ends now: plugged back in
    wait(lambda: r.health()["connected"] and r.health()["reconnects"] == 1)
    assert len(messages(caplog, "scale_connected")) == 1
    assert len(messages(caplog, "scale_unavailable")) == 1
    back = messages(caplog, "scale_back")
    assert len(back) == 1 and f"url={sim.url}" in back[0]
    health = r.health()
    assert datetime.fromisoformat(health["since"]).tzinfo is not None and health["last_error"]
