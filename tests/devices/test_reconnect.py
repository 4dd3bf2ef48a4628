"""The reconnect policy (pure, seeded) and the worker loop over a real TCP socket."""

from __future__ import annotations

import logging
import random
import socket
import threading

import pytest
from testkit.waiting import wait_for

from edge_agent.backoff import Backoff, backoff_ceiling_s, full_jitter_delay_s
from edge_agent.devices.reconnect import LinkEvents, LinkLost, ReconnectingWorker

# ------------------------------------------------------------------ the policy


def test_ceiling_doubles_from_the_base_up_to_the_cap():
    assert [backoff_ceiling_s(n, 0.5, 10.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_ceiling_s(10_000, 0.5, 10.0) == 10.0  # days of retries: no overflow
    assert backoff_ceiling_s(0, 0.5, 0.2) == 0.2  # a cap below the base wins


def test_delays_never_leave_zero_to_the_ceiling():
    rng = random.Random(1)
    for attempt in range(40):
        ceiling = backoff_ceiling_s(attempt, 0.1, 5.0)
        for _ in range(200):
            assert 0.0 <= full_jitter_delay_s(attempt, 0.1, 5.0, rng) <= ceiling


def test_full_jitter_spreads_over_the_whole_range():
    # Full jitter, not +-20 % around the ceiling: retries of many devices must not bunch up.
    rng = random.Random(2)
    delays = [full_jitter_delay_s(4, 0.5, 10.0, rng) for _ in range(2000)]  # ceiling 8 s
    assert min(delays) < 0.1 * 8.0 and max(delays) > 0.9 * 8.0
    deciles = [sum(1 for d in delays if k * 0.8 <= d < (k + 1) * 0.8) for k in range(10)]
    assert all(count > 100 for count in deciles), deciles  # 200 expected in each tenth


def test_backoff_grows_per_failure_and_stops_counting_at_the_cap():
    backoff = Backoff(base_s=0.5, cap_s=4.0, rng=random.Random(3))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff_ceiling_s(backoff.attempt, 0.5, 4.0))
        assert 0.0 <= backoff.next_delay_s() <= ceilings[-1]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert backoff.attempt == 3


def test_a_healthy_link_resets_the_backoff_and_a_flap_does_not():
    backoff = Backoff(base_s=0.5, cap_s=10.0, healthy_s=5.0, rng=random.Random(4))
    for _ in range(5):
        backoff.next_delay_s()
    backoff.link_lasted(up_s=0.2)  # accepted and dropped at once: keep backing off
    assert backoff.attempt == 5
    backoff.link_lasted(up_s=5.0)
    assert backoff.attempt == 0
    assert backoff.next_delay_s() <= 0.5


def test_same_seed_same_waits():
    first = Backoff(base_s=0.1, cap_s=5.0, rng=random.Random(9))
    second = Backoff(base_s=0.1, cap_s=5.0, rng=random.Random(9))
    assert [first.next_delay_s() for _ in range(12)] == [second.next_delay_s() for _ in range(12)]


def test_backoff_needs_positive_times():
    with pytest.raises(ValueError):
        Backoff(base_s=0.0, cap_s=1.0)
    with pytest.raises(ValueError):
        Backoff(base_s=0.1, cap_s=-1.0)


# ------------------------------------------------------------------ the worker

EVENTS = LinkEvents(connected="test_link_connected", lost="test_link_lost", back="test_link_back",
                    failed="test_link_failed")
log = logging.getLogger("tests.reconnect")


class LineReader(ReconnectingWorker):
    """Reads lines from a TCP server; a line "bug" stands for a bug in the device's code."""

    def __init__(self, port: int) -> None:
        super().__init__(name="test-line", log=log, events=EVENTS, context=f"port={port}",
                         backoff=Backoff(base_s=0.05, cap_s=0.1))
        self.port = port
        self.lines: list[bytes] = []

    def _open(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=0.2)

    def _serve(self, sock) -> None:
        self._link_up()
        buffer = b""
        while not self._stopping.is_set():
            try:
                data = sock.recv(1024)
            except TimeoutError:
                continue
            if not data:
                raise LinkLost("closed by the server")
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line == b"bug":
                    raise TypeError("a bug in the device code")
                self.lines.append(line)


@pytest.fixture
def line_server():
    """Accepts connections and sends each one the lines queued for it, then closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    script: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(script.pop(0) if script else b"bug\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], script
    stop.set()
    thread.join(5)
    server.close()


def test_a_bug_in_serve_is_logged_with_its_traceback_and_the_link_is_reopened(line_server, caplog):
    caplog.set_level(logging.INFO, logger=log.name)
    port, script = line_server
    script += [b"one\n", b"two\nbug\n"]
    reader = LineReader(port).start()
    try:
        wait_for(lambda: reader.link_errors >= 3, what="the link reopened after each bug")
        assert reader.lines[:2] == [b"one", b"two"]
        # The server closing is a lost link: a reason, no traceback. The bug gets its traceback.
        lost = [r for r in caplog.records if r.getMessage().startswith("test_link_lost")]
        assert lost[0].getMessage() == f"test_link_lost port={port} reason=closed by the server"
        assert not lost[0].exc_info
        failures = [r for r in caplog.records if r.getMessage().startswith("test_link_failed")]
        assert failures and failures[0].exc_info and failures[0].exc_info[0] is TypeError
        assert reader.last_error == "TypeError: a bug in the device code"
        health = reader.health()
        assert set(health) == {"connected", "since", "reconnects", "link_errors", "last_error"}
    finally:
        reader.stop()
    assert not reader.running and reader.connected is False
