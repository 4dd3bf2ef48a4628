"""Fixtures that start real simulators (TCP ports, ptys) and real readers, and stop them."""

from __future__ import annotations

import threading

import pytest
from testkit.waiting import wait_for

from edge_agent.config import ScaleConfig
from edge_agent.devices.scale.transport import ScaleReader
from edge_agent.simulators.scale import ScaleSimulator


class Events:
    """A thread-safe sink for what a reader posts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list = []

    def post(self, event) -> None:
        with self._lock:
            self.items.append(event)

    def of(self, kind: str) -> list:
        with self._lock:
            return [e for e in self.items if e.kind == kind]


@pytest.fixture
def simulator():
    started: list[ScaleSimulator] = []

    def make(protocol: str = "toledo", **kwargs) -> ScaleSimulator:
        kwargs.setdefault("frame_interval_s", 0.01)
        kwargs.setdefault("seed", 7)
        if "pty" not in kwargs and "tcp_port" not in kwargs:
            kwargs["tcp_port"] = 0
        sim = ScaleSimulator(protocol, **kwargs)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def reader():
    started: list[ScaleReader] = []

    def make(url: str, protocol: str = "toledo", **overrides) -> tuple[ScaleReader, Events]:
        settings = {"url": url, "protocol": protocol, "stable_readings": 4, "stable_window_s": 0.15,
                    "poll_interval_s": 0.01, "silence_timeout_s": 0.5, "reconnect_max_s": 0.3}
        settings.update(overrides)
        events = Events()
        r = ScaleReader("L1", ScaleConfig(**settings), events.post)
        r.start()
        started.append(r)
        return r, events

    yield make
    for r in started:
        r.stop(timeout_s=5)


@pytest.fixture
def wait():
    return wait_for
