"""open_pins on MockFactory: safe start levels, edges by role, and a failed open releases every pin."""

from __future__ import annotations

import pytest
from gpiozero import OutputDevice

from edge_agent.config import GateConfig
from edge_agent.devices.gate.pinmap import resolve_pins
from edge_agent.devices.gate.pins import open_pins
from edge_agent.errors import DeviceError


def test_outputs_start_safe_with_the_red_lamp_lit(factory):
    config = GateConfig(pin_factory="mock", active_high=False, red_lamp_contact="nc")
    pins = open_pins(config, resolve_pins(config), factory, on_edge=lambda role, active: None)
    try:
        # Active-low relays: de-energised = pin high. Every relay starts de-energised, and
        # with the red lamp on the NC contact that is what "red lit" means.
        assert all(device.pin.state for device in pins.outputs.values())
        assert pins.outputs["light_red"].value == 1
        assert all(device.value == 0 for role, device in pins.outputs.items() if role != "light_red")
        assert "loop_arrival" in pins.inputs and "loop_arrival" not in pins.outputs
    finally:
        pins.close()


def test_input_edges_arrive_by_role(factory):
    config = GateConfig(pin_factory="mock")
    seen: list[tuple[str, bool]] = []
    pins = open_pins(config, resolve_pins(config), factory, on_edge=lambda role, active: seen.append((role, active)))
    try:
        factory.pin("GPIO5").drive_high()
        factory.pin("GPIO5").drive_low()
        assert seen == [("loop_arrival", True), ("loop_arrival", False)]
    finally:
        pins.close()


def test_a_pin_in_use_fails_the_open_and_releases_the_others(factory):
    config = GateConfig(pin_factory="mock")
    blocker = OutputDevice("GPIO5", pin_factory=factory)  # another owner holds the arrival loop's pin
    with pytest.raises(DeviceError, match="gate L1: cannot open pins"):
        open_pins(config, resolve_pins(config), factory, on_edge=lambda role, active: None, lane="L1")
    blocker.close()
    # Everything the failed attempt had opened was released: a second open gets every pin.
    pins = open_pins(config, resolve_pins(config), factory, on_edge=lambda role, active: None)
    pins.close()
