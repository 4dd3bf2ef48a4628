"""The gate controller on gpiozero's MockFactory, asserting the mock pins' states."""

from __future__ import annotations

import threading
import time

import pytest
from testkit import waiting

from edge_agent.commands import Alarm, CloseBarrier, OpenBarrier, ShowSign
from edge_agent.config import GateConfig
from edge_agent.devices.gate.controller import GateController
from edge_agent.errors import ConfigError

OPEN, CLOSE, RED, GREEN = "GPIO17", "GPIO27", "GPIO22", "GPIO23"
ARRIVAL, ON_SCALE, UNDER_BOOM, EXIT = "GPIO5", "GPIO6", "GPIO13", "GPIO19"
OPEN_LIMIT, CLOSED_LIMIT = "GPIO24", "GPIO25"
SIGNS = {"exit": "GPIO12", "inspection": "GPIO16", "documents": "GPIO20", "scanner": "GPIO21"}
BEACON, BUZZER, PERMISSION, OVERRIDE = "GPIO18", "GPIO4", "GPIO26", "GPIO9"


def wait_for(condition, what: str, timeout_s: float = 10.0):
    """Polled every 5 ms: some states asserted here last only one output pulse."""
    return waiting.wait_for(condition, timeout_s, 0.005, what)


FULL = {"sign_pins": SIGNS, "beacon_pin": BEACON, "buzzer_pin": BUZZER, "permission_pin": PERMISSION,
        "override_key_pin": OVERRIDE}


def high(factory, pin: str) -> bool:
    return bool(factory.pin(pin).state)


def history(factory, pin: str) -> list[bool]:
    """The levels the pin went through, oldest first (gpiozero records every change)."""
    return [bool(s.state) for s in factory.pin(pin).states]


def drive(factory, pin: str, level: bool) -> None:
    (factory.pin(pin).drive_high if level else factory.pin(pin).drive_low)()


def stays(condition, duration_s: float) -> bool:
    """True when the condition held at every poll for the whole duration."""
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        if not condition():
            return False
        time.sleep(0.005)
    return True


def manual_closed(gate, factory) -> None:
    """No simulated barrier: the test plays the barrier's limit switches."""
    drive(factory, CLOSED_LIMIT, True)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed read-back")
    # Without read-back at start the controller pulsed CLOSE (safe on start); history from here.
    wait_for(lambda: not high(factory, CLOSE), what="end of the start-up close pulse")
    for pin in (OPEN, CLOSE, RED, GREEN):
        factory.pin(pin).clear_states()


# --------------------------------------------------------------------------- start and safe state


def test_starts_safe_red_and_closed(make_gate, factory):
    gate = make_gate(**FULL)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="simulated barrier at closed")
    assert high(factory, RED) and not high(factory, GREEN)
    for pin in (OPEN, CLOSE, BEACON, BUZZER, PERMISSION, *SIGNS.values()):
        assert not high(factory, pin), pin
    assert gate.state()["lights"] == "red"


def test_active_low_board_and_nc_red_lamp_by_configuration(make_gate, factory):
    # Active-low relays: de-energised = pin high. With the red lamp on the NC contact,
    # "red lit" is the de-energised relay as well, so a dead board still shows red.
    gate = make_gate(active_high=False, red_lamp_contact="nc")
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    assert high(factory, OPEN) and high(factory, CLOSE) and high(factory, GREEN)
    assert high(factory, RED)
    assert gate.state()["lights"] == "red"
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["lights"] == "green", what="green")
    assert not high(factory, GREEN)  # green relay energised: pin low
    assert not high(factory, RED)  # red relay energised: NC contact open, lamp dark
    assert False in history(factory, OPEN)  # the open relay was pulsed (pin driven low)


def test_safe_state_is_idempotent_from_another_thread(make_gate, factory):
    gate = make_gate()
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["lights"] == "green", what="green")
    threads = [threading.Thread(target=gate.safe_state) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert high(factory, RED) and not high(factory, GREEN)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    assert history(factory, CLOSE).count(True) == 1  # one close pulse, not four


# --------------------------------------------------------------------------- decisions


def test_release_sequence_green_only_after_open_readback(make_gate, factory, events):
    gate = make_gate(simulated_travel_s=None, **FULL)
    manual_closed(gate, factory)
    gate.execute(ShowSign(lane="L1", sign="exit"))
    gate.execute(OpenBarrier(lane="L1", reason="green"))
    wait_for(lambda: high(factory, OPEN), what="open pulse")
    assert high(factory, SIGNS["exit"])
    drive(factory, CLOSED_LIMIT, False)  # the boom lifts ...
    # ... and while it travels the light stays red
    assert stays(lambda: high(factory, RED) and not high(factory, GREEN), 0.3)
    assert gate.state()["barrier"] == "opening"
    drive(factory, OPEN_LIMIT, True)
    wait_for(lambda: high(factory, GREEN), what="green after read-back")
    assert not high(factory, RED)
    wait_for(lambda: not high(factory, OPEN), what="end of the open pulse")
    assert history(factory, OPEN) == [False, True, False]
    assert history(factory, CLOSE) == [False]
    assert gate.state()["barrier"] == "open"
    assert not events.rejected()


def test_control_decision_shows_sign_and_keeps_barrier_down(make_gate, factory):
    gate = make_gate(**FULL)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    gate.execute(ShowSign(lane="L1", sign="exit"))
    gate.execute(ShowSign(lane="L1", sign="inspection"))
    gate.execute(Alarm(lane="L1", reason="2 risk hits"))
    wait_for(lambda: high(factory, BEACON), what="beacon")
    assert high(factory, SIGNS["inspection"]) and not high(factory, SIGNS["exit"])
    assert high(factory, BUZZER)
    assert gate.state()["alarm"] == "2 risk hits" and gate.state()["sign"] == "inspection"
    assert history(factory, OPEN) == [False] and high(factory, RED)
    gate.execute(ShowSign(lane="L1", sign="none"))
    wait_for(lambda: not any(high(factory, p) for p in SIGNS.values()), what="signs off")


def test_alarm_buzzer_and_beacon_end_after_their_time(make_gate, factory):
    gate = make_gate(beacon_pin=BEACON, buzzer_pin=BUZZER, alarm_beacon_s=0.4, alarm_buzzer_s=0.1)
    gate.execute(Alarm(lane="L1", reason="hit"))
    wait_for(lambda: high(factory, BEACON) and high(factory, BUZZER), what="alarm on")
    wait_for(lambda: not high(factory, BUZZER), what="buzzer off")
    wait_for(lambda: not high(factory, BEACON), what="beacon off")
    assert gate.state()["alarm"] is None


def test_close_turns_red_before_the_close_pulse(make_gate, factory):
    gate = make_gate()
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["lights"] == "green", what="green")
    gate.execute(CloseBarrier(lane="L1"))
    wait_for(lambda: high(factory, CLOSE), what="close pulse")
    assert high(factory, RED) and not high(factory, GREEN)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    wait_for(lambda: not high(factory, CLOSE), what="end of the close pulse")
    assert history(factory, CLOSE) == [False, True, False]


def test_held_mode_holds_open_output_while_open(make_gate, factory):
    gate = make_gate(barrier_mode="held", barrier_close_pin="")
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["lights"] == "green", what="green")
    assert stays(lambda: high(factory, OPEN), 0.2)
    gate.execute(CloseBarrier(lane="L1"))
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    assert not high(factory, OPEN)


# --------------------------------------------------------------------------- interlock


def test_no_close_while_under_boom_loop_occupied(make_gate, factory):
    gate = make_gate()
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["lights"] == "green", what="green")
    drive(factory, UNDER_BOOM, True)
    wait_for(lambda: gate.state()["loops"]["under_boom"], what="under-boom loop")
    gate.execute(CloseBarrier(lane="L1"))
    wait_for(lambda: high(factory, RED), what="red at once")
    assert stays(lambda: not high(factory, CLOSE), 0.5)
    assert gate.state()["close_waiting_for_vehicle"] and gate.state()["barrier"] == "open"
    gate.safe_state()  # nor does the safe state close over a vehicle
    assert stays(lambda: not high(factory, CLOSE), 0.2)
    drive(factory, UNDER_BOOM, False)
    wait_for(lambda: high(factory, CLOSE), what="close once clear")
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    wait_for(lambda: not high(factory, CLOSE), what="end of the close pulse")
    assert history(factory, CLOSE) == [False, True, False]


# --------------------------------------------------------------------------- faults


def test_relay_mismatch_raises_alarm(make_gate, factory, events):
    gate = make_gate(beacon_pin=BEACON, feedback_pins={"barrier_open": "GPIO10"})
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    gate.simulator.weld("barrier_open")  # the monitoring contact no longer follows the coil
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["fault"], what="relay fault")
    assert "relay barrier_open disagrees" in gate.state()["fault"]
    assert any("relay barrier_open disagrees" in r.reason for r in events.rejected())
    assert high(factory, BEACON) and high(factory, RED) and not high(factory, GREEN)


def test_relay_feedback_that_follows_raises_nothing(make_gate, factory, events):
    gate = make_gate(feedback_pins={"barrier_open": "GPIO10", "light_green": "GPIO11"})
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["lights"] == "green", what="green")
    assert stays(lambda: gate.state()["fault"] is None, 0.6)
    assert not events.rejected()


def test_barrier_that_does_not_move_raises_alarm(make_gate, factory, events):
    gate = make_gate(beacon_pin=BEACON)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    gate.simulator.jam()
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: gate.state()["barrier"] == "fault", what="read-back fault")
    assert "did not leave the closed position within 1 s" in gate.state()["fault"]
    assert high(factory, BEACON) and high(factory, RED) and not high(factory, GREEN)
    gate.execute(OpenBarrier(lane="L1"))  # refused while in fault
    wait_for(lambda: any("open refused" in r.reason for r in events.rejected()), what="refusal")
    assert gate.clear_fault()  # still reads closed: a technician may clear it
    assert gate.state()["fault"] is None


def test_missing_open_readback_raises_alarm(make_gate, factory, events):
    gate = make_gate(simulated_travel_s=None, travel_s=0.5)
    manual_closed(gate, factory)
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: high(factory, OPEN), what="open pulse")
    drive(factory, CLOSED_LIMIT, False)  # it moves, but the open limit never reports
    wait_for(lambda: gate.state()["barrier"] == "fault", what="fault")
    assert "did not report open" in gate.state()["fault"]
    assert not high(factory, GREEN) and history(factory, GREEN) == [False]


def test_barrier_moving_without_command_raises_alarm(make_gate, factory, events):
    gate = make_gate(simulated_travel_s=None)
    manual_closed(gate, factory)
    drive(factory, CLOSED_LIMIT, False)
    wait_for(lambda: gate.state()["fault"], what="fault")
    assert "left the closed position" in gate.state()["fault"]


def test_permission_lapses_when_core_loop_dies(make_gate, factory, events):
    """The core loop renews on every tick; an exception ends it and the gate goes safe."""
    gate = make_gate(open_permission_s=0.5, permission_pin=PERMISSION)
    failures: list[BaseException] = []

    def core_loop() -> None:
        gate.execute(OpenBarrier(lane="L1"))
        for tick in range(1000):
            gate.renew_permission()
            if tick == 40:
                raise RuntimeError("bug in the core loop")
            time.sleep(0.01)

    def run() -> None:
        try:
            core_loop()
        except RuntimeError as err:
            failures.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: gate.state()["lights"] == "green", what="green while renewed")
    wait_for(lambda: history(factory, PERMISSION).count(True) >= 2, what="permission pin toggling")
    thread.join(10)
    assert failures
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed after the lapse")
    assert "open permission lapsed" in gate.state()["last_fault"]
    assert high(factory, RED) and not high(factory, GREEN) and not high(factory, PERMISSION)
    assert any("open permission lapsed" in r.reason for r in events.rejected())


def test_override_key_stops_the_agent_driving_the_barrier(make_gate, factory, events):
    gate = make_gate(override_key_pin=OVERRIDE)
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    drive(factory, OVERRIDE, True)
    wait_for(lambda: gate.state()["override"], what="override")
    gate.execute(OpenBarrier(lane="L1"))
    wait_for(lambda: any("override key on" in r.reason for r in events.rejected()), what="override notice")
    wait_for(lambda: any("open refused" in r.reason for r in events.rejected()), what="refusal")
    assert history(factory, OPEN) == [False] and high(factory, RED)


# --------------------------------------------------------------------------- loops to events


def test_crossing_forward_posts_detected_then_left(make_gate, factory, events):
    make_gate()
    for pin, level in [(ARRIVAL, 1), (ARRIVAL, 0), (ON_SCALE, 1), (ON_SCALE, 0),
                       (UNDER_BOOM, 1), (UNDER_BOOM, 0), (EXIT, 1), (EXIT, 0)]:
        drive(factory, pin, bool(level))
        time.sleep(0.06)
    wait_for(lambda: events.of("vehicle_left"), what="vehicle left")
    assert len(events.of("vehicle_detected")) == 1
    assert [e.direction for e in events.of("vehicle_left")] == ["forward"]
    assert events.of("vehicle_detected")[0].lane == "L1"


def test_backing_off_the_scale_posts_left_reverse(make_gate, factory, events):
    make_gate()
    for pin, level in [(ARRIVAL, 1), (ARRIVAL, 0), (ON_SCALE, 1), (ON_SCALE, 0), (ARRIVAL, 1), (ARRIVAL, 0)]:
        drive(factory, pin, bool(level))
        time.sleep(0.06)
    wait_for(lambda: events.of("vehicle_left"), what="vehicle left")
    assert [e.direction for e in events.of("vehicle_left")] == ["reverse"]
    assert len(events.of("vehicle_detected")) == 1


def test_contact_chatter_is_one_arrival(make_gate, factory, events):
    gate = make_gate(debounce_s=0.05)
    for level in (1, 0, 1, 0, 1):  # a bouncing relay contact in the loop detector
        drive(factory, ARRIVAL, bool(level))
    wait_for(lambda: gate.state()["loops"]["arrival"], what="arrival")
    time.sleep(0.2)
    assert len(events.of("vehicle_detected")) == 1
    assert gate.state()["loops"]["arrival"] is True


# --------------------------------------------------------------------------- configuration


def test_bad_wiring_refused_before_any_pin_is_touched(factory, events):
    config = GateConfig(pin_factory="mock", light_green_pin="GPIO17", loop_exit_pin="GPIO0")
    with pytest.raises(ConfigError) as err:
        GateController("L1", config, events, pin_factory=factory)
    text = str(err.value)
    assert "lanes[L1].gate.light_green_pin: GPIO17 is already used by lanes[L1].gate.barrier_open_pin" in text
    assert "lanes[L1].gate.loop_exit_pin: GPIO0 is reserved" in text
    assert not factory.pins  # nothing was opened


def test_execute_rejects_non_gate_commands(make_gate):
    gate = make_gate()
    with pytest.raises(TypeError):
        gate.execute("open please")


def test_both_limits_at_once_is_a_wiring_fault(make_gate, factory, events):
    gate = make_gate(simulated_travel_s=None)
    manual_closed(gate, factory)
    drive(factory, OPEN_LIMIT, True)
    wait_for(lambda: gate.state()["fault"], what="fault")
    assert any("both limit switches" in r.reason for r in events.rejected())


def test_fast_barrier_cycles_raise_no_false_fault(make_gate, factory, events):
    # A barrier quicker than the debounce window: limits flip inside one window.
    gate = make_gate(simulated_travel_s=0.0, pulse_s=0.05)
    for _ in range(15):
        wait_for(lambda: gate.state()["barrier"] == "closed" and not high(factory, OPEN), what="closed")
        gate.execute(OpenBarrier(lane="L1"))
        wait_for(lambda: gate.state()["barrier"] == "open", what="open")
        gate.execute(CloseBarrier(lane="L1"))
    wait_for(lambda: gate.state()["barrier"] == "closed", what="closed")
    assert gate.state()["fault"] is None and not events.rejected()
