"""One lane's gate through gpiozero: barrier, traffic light, sign, alarm, loop detectors.

The core sends commands (edge_agent.commands: OpenBarrier, CloseBarrier, ShowSign,
Alarm); `execute()` only queues them, and the controller's own thread carries them out,
times the relay pulses and supervises the read-backs. The inputs come back as events on
the core's queue: `VehicleDetected`, `VehicleLeft(direction="forward"|"reverse")`, and
every fault or override as a `models.Rejected` with source ``gate-<lane>``.

Fail-safe rules (docs/wiring.md shows the wiring that goes with them):

- Everything de-energised is barrier closed and red. The controller starts, stops and
  fails into that state (`safe_state()`), from any thread or a signal handler.
- The lights follow the barrier: green only once the open limit reports open; red first,
  before any close.
- CLOSE is never commanded while the under-boom loop reports a vehicle: the close waits,
  with the light red, until the loop clears. The barrier's own controller keeps the
  personal-safety function; this only keeps the agent from fighting it.
- A barrier that does not leave its end position within `limit_leave_s` of a command, or
  does not reach the other one within `travel_s`, moves without a command, or shows both
  limits at once, and a relay whose monitoring contact disagrees with its command for
  `feedback_s`, is a fault: alarm (beacon, buzzer, Rejected event), red, close when clear.
  An OPEN is refused while in fault; a good closed read-back clears it.
- The open permission lapses unless `renew_permission()` is called (the core does on
  every loop tick) within `open_permission_s`; while it holds, the `permission_pin` is
  toggled for an external watchdog relay that drops when the process dies.
- While the manual override key is on, the agent does not drive the barrier at all.

A vehicle crossing as the loop detectors see it (the demo drives MockFactory input pins
in this order; `pin.drive_high()` = occupied with the default pull-down inputs):

    arrival high, arrival low          -> VehicleDetected on "arrival high"
    on_scale high                      (weighing, decision, OPEN, green)
    on_scale low
    under_boom high, under_boom low    (passing under the boom; a CLOSE waits for low)
    exit high, exit low                -> VehicleLeft(direction="forward") on "exit low"

Backing out instead: on_scale low, arrival high, arrival low -> VehicleLeft("reverse").

On mock pins nothing moves unless something stands on the far side of the wires: the
demo and the tests pass `equipment`, the simulators' barrier
(edge_agent/simulators/barrier.py `simulated_barrier`), which answers the relay outputs
on the limit inputs, so read-backs follow the outputs as on a real lane.

    gate = GateController("L1", GateConfig(pin_factory="mock"), core.post,
                          heartbeat=lambda: watchdog.beat("gate-L1"))
    gate.execute(OpenBarrier(lane="L1"))
    gate.renew_permission()        # every core loop tick
    gate.state()                   # barrier, lights, sign, alarm, loops, fault ...
    gate.clear_fault()             # a technician's reset, only when it reads back closed
    gate.close()
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from edge_agent.commands import Alarm, CloseBarrier, OpenBarrier, ShowSign
from edge_agent.config import GateConfig
from edge_agent.devices.gate.loops import LOOPS, Debouncer, LoopState, step
from edge_agent.devices.gate.pinmap import resolve_pins
from edge_agent.devices.gate.pins import make_pin_factory, open_pins
from edge_agent.models import Rejected, VehicleDetected, VehicleLeft

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    def stop(self) -> None: ...


# (pin factory, resolved pins by role, the gate's configuration) -> started equipment
Equipment = Callable[[Any, dict[str, str], GateConfig], Stoppable]

PERMISSION_TOGGLE_S = 0.1  # the watchdog relay's timer must be set well above this
_TICK_S = 0.05


class GateController:
    def __init__(
        self,
        lane_id: str,
        config: GateConfig,
        post: Callable[[object], None],
        *,
        pin_factory: Any = None,
        heartbeat: Callable[[], None] | None = None,
        equipment: Equipment | None = None,
    ) -> None:
        self.lane_id = lane_id
        self.config = config
        self.source = f"gate-{lane_id}"
        self._post_to_core = post
        self._heartbeat = heartbeat
        self.pins = resolve_pins(config, lane=lane_id)  # ConfigError before any pin is touched
        self._own_factory = pin_factory is None
        self.factory = pin_factory if pin_factory is not None else make_pin_factory(config.pin_factory)
        self._lock = threading.RLock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.counters: Counter = Counter()
        # `.on()` always means "lit" / "energised for action" in this module (pins.py).
        self._pins = open_pins(config, self.pins, self.factory, on_edge=self._on_edge, lane=lane_id)
        self.outputs: dict[str, Any] = self._pins.outputs
        self.inputs: dict[str, Any] = self._pins.inputs

        # What answers on the far side of the wires when there is no real barrier: the
        # demo's and the tests' simulated boom on mock pins. Production passes nothing.
        self.simulator = equipment(self.factory, self.pins, config) if equipment is not None else None

        now = time.monotonic()
        self._debounce = {role: Debouncer(config.debounce_s, level=bool(dev.value))
                          for role, dev in self.inputs.items()}
        occupied = frozenset(name for name in LOOPS if self._level(f"loop_{name}"))
        # A truck already standing on the loops at start is tracked, but starts no crossing
        # by itself: the agent tells the core, which asks the officer (TruckFoundAtStart).
        self.occupied_at_start = occupied
        self._loops = LoopState(occupied=occupied, present=bool(occupied), furthest=max(
            (LOOPS.index(n) for n in occupied), default=-1))
        self.barrier = "closed" if self._level("closed_limit") and not self._level("open_limit") else "closing"
        self.fault: str | None = None
        self.last_fault: str | None = None
        self.sign = "none"
        self.alarm: str | None = None
        self.override = self._level("override_key")
        self._granted = False
        self._renewed = now
        self._pending_close = False
        self._leave_by: tuple[str, float] | None = None
        self._reach_by: tuple[str, float] | None = None
        self._pulse_off: dict[str, float] = {}
        self._alarm_off: dict[str, float] = {}
        self._changed_at: dict[str, float] = {role: now for role in self.outputs}
        self._relay_faults: set[str] = set()
        self._last_toggle = now
        self._warned: set[str] = set()
        self.last_progress = now
        self._thread = threading.Thread(target=self._run, name=f"gate-{lane_id}", daemon=True)
        self.safe_state()  # fail-safe on start: close (when clear) and red
        self._thread.start()

    # ------------------------------------------------------------------ public API

    def execute(self, command: object) -> None:
        """Queue a gate command; returns at once (the controller's thread carries it out)."""
        if not isinstance(command, (OpenBarrier, CloseBarrier, ShowSign, Alarm)):
            raise TypeError(f"not a gate command: {type(command).__name__}")
        self._queue.put(("command", command))

    def renew_permission(self) -> None:
        """The core is alive: keep the open permission (a float store, safe from any thread)."""
        self._renewed = time.monotonic()

    def safe_state(self) -> None:
        """Red, permission withdrawn, and the barrier closing as soon as the boom loop is clear.

        Idempotent; safe from any thread and from a signal handler. The outputs are set
        even when the controller's lock cannot be had quickly, because a stuck thread must
        not keep a lane green.
        """
        got = self._lock.acquire(timeout=0.5)
        try:
            self._granted = False
            self._set_output("light_green", False)
            self._set_output("light_red", True)
            self._set_output("permission", False)
            self._pulse_off.pop("barrier_open", None)
            if self.config.barrier_mode == "pulse":
                self._set_output("barrier_open", False)
            if got:
                self._start_close(time.monotonic())
            else:
                self._queue.put(("safe", None))
        finally:
            if got:
                self._lock.release()

    def clear_fault(self) -> bool:
        """A technician's reset: clears the fault if the barrier reads back closed."""
        with self._lock:
            if self.fault is None:
                return True
            if self._level("closed_limit") and not self._level("open_limit") and not self.override:
                self._clear_fault()
                return True
            return False

    def state(self) -> dict[str, Any]:
        with self._lock:
            red, green = self._lit("light_red"), self._lit("light_green")
            lights = "red+green" if red and green else "red" if red else "green" if green else "off"
            return {
                "barrier": self.barrier,
                "lights": lights,
                "sign": self.sign,
                "alarm": self.alarm,
                "loops": {name: name in self._loops.occupied for name in LOOPS},
                "limits": {"open": self._level("open_limit"), "closed": self._level("closed_limit")},
                "fault": self.fault,
                "last_fault": self.last_fault,
                "override": self.override,
                "permission": self._granted,
                "close_waiting_for_vehicle": self._pending_close,
                "counters": dict(self.counters),
            }

    def close(self) -> None:
        """Safe state, stop the thread and the simulator, release the pins."""
        self.safe_state()
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(2)
        if self.simulator is not None:
            self.simulator.stop()
        self._pins.close()
        if self._own_factory:
            try:
                self.factory.close()
            except Exception:
                log.exception("gate_factory_close_failed lane=%s", self.lane_id)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=self._wait_s())
            except queue.Empty:
                item = None
            try:
                with self._lock:
                    while item is not None:
                        self._handle(item)
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            item = None
                    self._tick(time.monotonic())
            except Exception as err:  # a bug here must leave the lane safe, and the thread alive
                self.counters["errors"] += 1
                log.exception("gate_thread_error lane=%s", self.lane_id)
                try:
                    self._raise_fault(f"controller error: {type(err).__name__}: {err}")
                except Exception:
                    log.exception("gate_fault_handling_failed lane=%s", self.lane_id)
            self.last_progress = time.monotonic()
            if self._heartbeat is not None:
                try:
                    self._heartbeat()
                except Exception:
                    log.exception("gate_heartbeat_failed lane=%s", self.lane_id)

    def _wait_s(self) -> float:
        now = time.monotonic()
        due = [d.due() for d in self._debounce.values()]
        due += list(self._pulse_off.values())
        soonest = min((t for t in due if t is not None), default=now + _TICK_S)
        return min(_TICK_S, max(0.0, soonest - now))

    def _handle(self, item: tuple) -> None:
        kind, payload = item[0], item[1]
        if kind == "edge":
            _, role, raw, at = item
            for level in self._debounce[role].edge(raw, at):
                self._on_input(role, level, time.monotonic())
        elif kind == "command":
            self._on_command(payload, time.monotonic())
        elif kind == "safe":
            self._start_close(time.monotonic())

    def _tick(self, now: float) -> None:
        for role, debouncer in self._debounce.items():
            due = debouncer.due()
            if due is not None and now >= due:
                for level in debouncer.settle(bool(self.inputs[role].value), now):
                    self._on_input(role, level, now)
        for role, off_at in list(self._pulse_off.items()):
            if now >= off_at:
                del self._pulse_off[role]
                self._set_output(role, False)
        for role, off_at in list(self._alarm_off.items()):
            if now >= off_at:
                del self._alarm_off[role]
                self._set_output(role, False)
                if role == "beacon" or "beacon" not in self.outputs:
                    self.alarm = None if self.fault is None else self.alarm
        self._check_limits()
        self._check_readback(now)
        self._check_relays(now)
        if self._granted:
            silent_s = now - self._renewed
            if silent_s > self.config.open_permission_s:
                self._raise_fault(f"open permission lapsed: not renewed for {silent_s:.1f} s")
            elif "permission" in self.outputs and now - self._last_toggle >= PERMISSION_TOGGLE_S:
                self._last_toggle = now
                self._set_output("permission", not self.outputs["permission"].value)
        if self._pending_close and not self._occupied("under_boom"):
            self._start_close(now)

    # ------------------------------------------------------------------ commands

    def _on_command(self, command: object, now: float) -> None:
        self.counters[f"command_{getattr(command, 'kind', '?')}"] += 1
        if isinstance(command, OpenBarrier):
            self._start_open(now, command.reason)
        elif isinstance(command, CloseBarrier):
            self._start_close(now)
        elif isinstance(command, ShowSign):
            self._show_sign(command.sign)
        elif isinstance(command, Alarm):
            self._sound_alarm(command.reason, now)

    def _start_open(self, now: float, reason: str) -> None:
        if self.override:
            self._reject("open refused: the manual override key is on")
            return
        if self.fault is not None:
            self._reject(f"open refused: gate fault: {self.fault}")
            return
        self._granted = True
        self._renewed = now
        self._pending_close = False
        if self.barrier != "open":
            self._lights(green=False)
        if self.config.barrier_mode == "pulse":
            self._pulse_off.pop("barrier_close", None)
            self._set_output("barrier_close", False)
            self._pulse("barrier_open", now)
        else:
            self._set_output("barrier_open", True)
        log.info("gate_open lane=%s reason=%s", self.lane_id, reason)
        if self._level("open_limit") and not self._level("closed_limit"):
            self._reached_open()
            return
        self.barrier = "opening"
        self._leave_by = ("closed_limit", now + self.config.limit_leave_s) if self._level("closed_limit") else None
        self._reach_by = ("open_limit", now + self.config.travel_s)

    def _start_close(self, now: float) -> None:
        self._granted = False
        self._set_output("permission", False)
        self._lights(green=False)  # red before anything moves
        if self.override:
            return
        if self._occupied("under_boom"):
            if not self._pending_close:
                log.info("gate_close_waits lane=%s reason=vehicle under the boom", self.lane_id)
            self._pending_close = True
            return
        self._pending_close = False
        at_closed = self._level("closed_limit") and not self._level("open_limit")
        if self.barrier in ("closed", "closing") and (at_closed or self._reach_by is not None):
            return  # idempotent: already closed, or a close is under way
        self._pulse_off.pop("barrier_open", None)
        self._set_output("barrier_open", False)
        if self.config.barrier_mode == "pulse":
            self._pulse("barrier_close", now)
        if self.fault is not None:
            # Stay in fault; a good closed read-back clears it (see _on_limit).
            self._reach_by = None
            self._leave_by = None
            return
        if at_closed:
            self.barrier = "closed"
            self._leave_by = self._reach_by = None
            return
        self.barrier = "closing"
        self._leave_by = ("open_limit", now + self.config.limit_leave_s) if self._level("open_limit") else None
        self._reach_by = ("closed_limit", now + self.config.travel_s)

    def _show_sign(self, sign: str) -> None:
        for role in self.outputs:
            if role.startswith("sign_") and role != f"sign_{sign}":
                self._set_output(role, False)  # break before make: never two directions lit
        self.sign = sign
        if sign == "none":
            return
        if f"sign_{sign}" in self.outputs:
            self._set_output(f"sign_{sign}", True)
        elif sign not in self._warned:
            self._warned.add(sign)
            log.warning("gate_sign_not_wired lane=%s sign=%s", self.lane_id, sign)

    def _sound_alarm(self, reason: str, now: float) -> None:
        self.alarm = reason
        log.warning("gate_alarm lane=%s reason=%s", self.lane_id, reason)
        for role, seconds in (("beacon", self.config.alarm_beacon_s), ("buzzer", self.config.alarm_buzzer_s)):
            if role in self.outputs:
                self._set_output(role, True)
                self._alarm_off[role] = now + seconds
        if not ({"beacon", "buzzer"} & set(self.outputs)):
            self._alarm_off["none"] = now + self.config.alarm_beacon_s

    # ------------------------------------------------------------------ inputs

    def _on_edge(self, role: str, raw: bool) -> None:
        # Runs in gpiozero's (or the mock driver's) thread: only enqueue.
        self._queue.put(("edge", role, raw, time.monotonic()))

    def _on_input(self, role: str, active: bool, now: float) -> None:
        self.counters[f"input_{role}_{'on' if active else 'off'}"] += 1
        if role.startswith("loop_"):
            self._loops, moves = step(self._loops, role[5:], active)
            for move in moves:
                if move == "arrived":
                    self._post(VehicleDetected(lane=self.lane_id, source=self.source))
                else:
                    direction = "forward" if move == "left_forward" else "reverse"
                    self._post(VehicleLeft(lane=self.lane_id, direction=direction, source=self.source))
        elif role in ("open_limit", "closed_limit"):
            self._on_limit(role, active, now)
        elif role == "override_key":
            self._on_override(active, now)

    def _on_limit(self, role: str, active: bool, now: float) -> None:
        if self.override:
            self.barrier = self._barrier_from_limits()
            return
        b = self.barrier
        if active and self._level("open_limit") and self._level("closed_limit"):
            return  # both at once: _check_limits names that once the levels have settled
        if role == "open_limit" and active:
            if b == "opening":
                self._reached_open()
            elif b == "closing":
                # The barrier's own safety reopened over something: close again once clear.
                log.warning("gate_barrier_reopened lane=%s", self.lane_id)
                self.barrier, self._pending_close, self._reach_by, self._leave_by = "open", True, None, None
            elif b == "closed":
                self._raise_fault("barrier reports open without an OPEN command")
        elif role == "open_limit":
            if b == "open":
                self._raise_fault("barrier left the open position without a CLOSE command")
            elif self._leave_by and self._leave_by[0] == "open_limit":
                self._leave_by = None
        elif active:  # closed limit reached
            if b == "closing":
                self.barrier, self._reach_by, self._leave_by = "closed", None, None
            elif b == "fault" and not self._granted:
                self._clear_fault()
            elif b in ("opening", "open"):
                self._raise_fault(f"barrier reports closed while {b}")
        else:  # closed limit left
            if b == "closed":
                self._raise_fault("barrier left the closed position without an OPEN command")
            elif self._leave_by and self._leave_by[0] == "closed_limit":
                self._leave_by = None

    def _clear_fault(self) -> None:
        log.warning("gate_fault_cleared lane=%s fault=%s", self.lane_id, self.fault)
        self.fault, self.barrier, self._reach_by, self._leave_by = None, "closed", None, None
        self._relay_faults.clear()  # a relay that still disagrees raises the fault again

    def _reached_open(self) -> None:
        self.barrier, self._reach_by, self._leave_by = "open", None, None
        if self._granted and not self._pending_close:
            self._lights(green=True)

    def _on_override(self, active: bool, now: float) -> None:
        self.override = active
        if active:
            self._granted = False
            self._pending_close = False
            self._pulse_off.clear()
            for role in ("barrier_open", "barrier_close", "permission"):
                self._set_output(role, False)
            self._lights(green=False)
            self._leave_by = self._reach_by = None
            self.barrier = self._barrier_from_limits()
            self._reject("manual override key on: the barrier is under manual control")
        else:
            self._reject("manual override key off: the agent drives the barrier again")
            self.barrier = self._barrier_from_limits()
            self._start_close(now)

    def _barrier_from_limits(self) -> str:
        if self._level("open_limit"):
            return "open"
        if self._level("closed_limit"):
            return "closed"
        return "closing"

    # ------------------------------------------------------------------ supervision

    def _check_limits(self) -> None:
        # Only settled levels count: a limit that changed inside its debounce window may
        # still show its old level while the other one already shows the new.
        settled = all(self._debounce[r].due() is None for r in ("open_limit", "closed_limit"))
        if settled and self._level("open_limit") and self._level("closed_limit") and not self.override:
            self._raise_fault("both limit switches report at once: check the read-back wiring")

    def _check_readback(self, now: float) -> None:
        if self.override or self.barrier == "fault":
            return
        # Levels as well as edges: a limit that flickers inside one debounce window
        # (a very fast barrier, a quick re-command) shows no edge, only its level.
        opened, closed = self._level("open_limit"), self._level("closed_limit")
        if self.barrier == "opening" and opened and not closed:
            self._reached_open()
        elif self.barrier == "closing" and closed and not opened:
            self.barrier, self._reach_by, self._leave_by = "closed", None, None
        if self._leave_by and not self._level(self._leave_by[0]):
            self._leave_by = None
        if self._leave_by and now > self._leave_by[1]:
            where = "closed" if self._leave_by[0] == "closed_limit" else "open"
            self._raise_fault(f"barrier did not leave the {where} position within {self.config.limit_leave_s:g} s "
                              "of the command: no movement or no read-back")
        elif self._reach_by and now > self._reach_by[1]:
            where = "open" if self._reach_by[0] == "open_limit" else "closed"
            self._raise_fault(f"barrier did not report {where} within {self.config.travel_s:g} s: missing read-back")

    def _check_relays(self, now: float) -> None:
        for out_role in self.config.feedback_pins:
            fb_role = f"feedback_{out_role}"
            if out_role not in self.outputs or fb_role not in self.inputs:
                continue
            if now - self._changed_at[out_role] < self.config.feedback_s:
                continue
            commanded = self._energised(out_role)
            reads = self._debounce[fb_role].level
            if commanded != reads:
                if out_role not in self._relay_faults:
                    self._relay_faults.add(out_role)
                    on_off = {True: "on", False: "off"}
                    self._raise_fault(f"relay {out_role} disagrees with its command: commanded "
                                      f"{on_off[commanded]}, monitoring contact reads {on_off[reads]}")
            else:
                self._relay_faults.discard(out_role)

    def _raise_fault(self, reason: str) -> None:
        now = time.monotonic()
        if self.fault == reason:
            return
        self.counters["faults"] += 1
        self.fault = self.last_fault = reason
        self.barrier = "fault"
        self._leave_by = self._reach_by = None
        log.error("gate_fault lane=%s reason=%s", self.lane_id, reason)
        self._post(Rejected(source=self.source, reason=f"gate fault: {reason}"))
        self._sound_alarm(f"gate fault: {reason}", now)
        self._start_close(now)

    # ------------------------------------------------------------------ pins

    def _lights(self, *, green: bool) -> None:
        # Order matters: never both lit; a moment dark is the lesser evil.
        if green:
            self._set_output("light_red", False)
            self._set_output("light_green", True)
        else:
            self._set_output("light_green", False)
            self._set_output("light_red", True)

    def _pulse(self, role: str, now: float) -> None:
        self._set_output(role, True)
        self._pulse_off[role] = now + self.config.pulse_s

    def _set_output(self, role: str, on: bool) -> None:
        device = self.outputs.get(role)
        if device is None or bool(device.value) == on:
            return
        if on:
            device.on()
        else:
            device.off()
        self._changed_at[role] = time.monotonic()

    def _lit(self, role: str) -> bool:
        device = self.outputs.get(role)
        return bool(device is not None and device.value)

    def _energised(self, role: str) -> bool:
        """Is the relay coil on? (The pin level against the board's polarity.)"""
        return bool(self.outputs[role].pin.state) == self.config.active_high

    def _level(self, role: str) -> bool:
        """The debounced level once running; the raw level before the thread starts."""
        if role not in self.inputs:
            return False
        debouncer = getattr(self, "_debounce", {}).get(role)
        return debouncer.level if debouncer is not None else bool(self.inputs[role].value)

    def _occupied(self, loop: str) -> bool:
        return loop in self._loops.occupied

    def _reject(self, reason: str) -> None:
        log.warning("gate_rejected lane=%s reason=%s", self.lane_id, reason)
        self._post(Rejected(source=self.source, reason=reason))

    def _post(self, event: object) -> None:
        try:
            self._post_to_core(event)
        except Exception:  # the core's queue must never take the gate thread down
            self.counters["post_failed"] += 1
            log.exception("gate_post_failed lane=%s event=%s", self.lane_id, getattr(event, "kind", event))
