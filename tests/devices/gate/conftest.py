"""Gate fixtures: a MockFactory per test and controllers that are always closed."""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory

from edge_agent.config import GateConfig
from edge_agent.devices.gate.controller import GateController
from edge_agent.simulators.barrier import simulated_barrier


class Events:
    """What the controller posted to the core, thread-safe."""

    def __init__(self) -> None:
        self.items: list = []
        self._lock = threading.Lock()

    def __call__(self, event: object) -> None:
        with self._lock:
            self.items.append(event)

    def of(self, kind: str) -> list:
        with self._lock:
            return [e for e in self.items if getattr(e, "kind", type(e).__name__) == kind]

    def rejected(self) -> list:
        with self._lock:
            return [e for e in self.items if type(e).__name__ == "Rejected"]


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def make_gate(factory, events):
    gates: list[GateController] = []

    def make(simulated_travel_s: float | None = 0.3, **overrides) -> GateController:
        """A gate on mock pins; with `simulated_travel_s`, the simulators' barrier answers it
        (None: the test drives the limit switches itself)."""
        config = GateConfig(pin_factory="mock", **overrides)
        equipment = simulated_barrier(simulated_travel_s) if simulated_travel_s is not None else None
        gate = GateController("L1", config, events, pin_factory=factory, equipment=equipment)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()
