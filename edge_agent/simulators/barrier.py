"""A barrier and its own controller, on gpiozero MockFactory pins.

It does what the real boom controller beside the lane does, seen from the agent's
wires: it watches the agent's OPEN and CLOSE relay outputs (pulses, or OPEN held), moves
the boom for `travel_s`, and reports the end positions on the open and closed limit
inputs. Like a real controller it keeps its own safety function: it does not close
while the under-boom loop is occupied, it closes once the loop clears. Relays with a
monitoring contact are mirrored onto their feedback inputs.

Faults for tests and demos: `jam()` stops the boom where it is (no read-back change),
`weld(role)` freezes a relay's monitoring contact.

    sim = SimulatedBarrier(factory, pins, travel_s=0.3, held=False, active_high=True)
    sim.start(); ...; sim.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class SimulatedBarrier:
    def __init__(
        self,
        factory,
        pins: dict[str, str],
        *,
        travel_s: float = 0.3,
        held: bool = False,
        active_high: bool = True,
        input_active_high: bool = True,
        poll_s: float = 0.005,
    ) -> None:
        self.factory = factory
        self.pins = pins
        self.travel_s = travel_s
        self.held = held
        self.active_high = active_high
        self.input_active_high = input_active_high
        self.poll_s = poll_s
        self.position = "closed"  # closed | opening | open | closing | stopped
        self.jammed = False
        self.welded: set[str] = set()
        self._target = "closed"
        self._moved_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-barrier", daemon=True)
        self._set_input("closed_limit", True)
        self._set_input("open_limit", False)

    def start(self) -> SimulatedBarrier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def jam(self) -> None:
        self.jammed = True

    def weld(self, role: str) -> None:
        self.welded.add(role)

    # ------------------------------------------------------------------ private

    def _run(self) -> None:
        last_open = last_close = False
        while not self._stop.wait(self.poll_s):
            try:
                open_on = self._output("barrier_open")
                close_on = self._output("barrier_close")
                if self.held:
                    self._command("open" if open_on else "closed")
                else:
                    if open_on and not last_open:
                        self._command("open")
                    if close_on and not last_close:
                        self._command("closed")
                last_open, last_close = open_on, close_on
                self._move()
                self._mirror_feedback()
            except Exception:  # a simulator must not die silently mid-demo
                log.exception("sim_barrier_error")

    def _command(self, target: str) -> None:
        if target != self._target:
            self._target = target
            self._moved_at = time.monotonic()

    def _move(self) -> None:
        if self.jammed:
            return
        under_boom = self._input("loop_under_boom")
        if self._target == "closed" and under_boom and self.position != "closed":
            # The real controller's safety function: hold the boom up over a vehicle.
            self._moved_at = time.monotonic()
            if self.position == "closing":
                self.position = "opening"
            return
        if self.position == self._target:
            return
        elapsed = time.monotonic() - self._moved_at
        moving = "opening" if self._target == "open" else "closing"
        if self.position != moving:
            self.position = moving
            self._set_input("closed_limit", False)
            self._set_input("open_limit", False)
        if elapsed >= self.travel_s:
            self.position = self._target
            self._set_input(f"{self._target}_limit", True)

    def _mirror_feedback(self) -> None:
        for role in ("barrier_open", "barrier_close", "light_red", "light_green", "permission"):
            if f"feedback_{role}" in self.pins and role in self.pins and role not in self.welded:
                self._set_input(f"feedback_{role}", self._output(role))

    def _output(self, role: str) -> bool:
        """Is the relay on this output energised (the board's polarity applied)?"""
        name = self.pins.get(role)
        if not name:
            return False
        pin = self.factory.pin(name)
        if pin.function != "output":
            return False
        return bool(pin.state) == self.active_high

    def _input(self, role: str) -> bool:
        name = self.pins.get(role)
        if not name:
            return False
        return bool(self.factory.pin(name).state) == self.input_active_high

    def _set_input(self, role: str, active: bool) -> None:
        name = self.pins.get(role)
        if not name:
            return
        pin = self.factory.pin(name)
        if pin.function != "input":
            return
        if active == self.input_active_high:
            pin.drive_high()
        else:
            pin.drive_low()


def simulated_barrier(travel_s: float = 0.3) -> Callable[[Any, dict[str, str], Any], SimulatedBarrier]:
    """The gate controller's `equipment` for runs on mock pins: a started barrier that
    follows the gate's wiring (pulse or held, active-low relays, pull-up inputs)."""

    def attach(factory: Any, pins: dict[str, str], config: Any) -> SimulatedBarrier:
        return SimulatedBarrier(factory, pins, travel_s=travel_s, held=config.barrier_mode == "held",
                                active_high=config.active_high, input_active_high=not config.input_pull_up).start()

    return attach
