"""The gate's pins as gpiozero devices: the one place that opens them.

The controller (`GateController`) and the technician's bench (`edge-agent gpio test`)
drive the same wires, so they open them the same way: outputs de-energised except the
red lamp, which is lit; gpiozero's `active_high` carries both the board's polarity and
a normally-closed red lamp, so `.on()` always means "lit" / "energised for action";
inputs with the configured pull and an edge callback per role.

    factory = make_pin_factory(config.pin_factory)
    pins = open_pins(config, resolve_pins(config), factory, on_edge=lambda role, active: ...)
    pins.outputs["barrier_open"].on()
    pins.close()
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.config import GateConfig
from edge_agent.devices.gate.pinmap import OUTPUT_KEYS
from edge_agent.errors import DeviceError

log = logging.getLogger(__name__)


def make_pin_factory(name: str) -> Any:
    """The gpiozero pin factory named in the configuration, created explicitly."""
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory

            return MockFactory()
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
        from gpiozero.pins.native import NativeFactory

        return NativeFactory()
    except Exception as err:  # ImportError, no /dev/gpiochip*, not a Pi ...
        raise DeviceError(
            f"gpio pin factory {name!r} cannot start: {err}. On a board, check the GPIO library and the "
            f"service's access to /dev/gpiochip*; for a dry run without a board, say so in the site file "
            f"with pin_factory = \"mock\" in each lane's [lanes.gate] (nothing is then driven)") from err


def is_output(role: str) -> bool:
    """Whether the agent drives this role (a relay or lamp) rather than reads it."""
    return role in OUTPUT_KEYS or role.startswith("sign_")


@dataclass
class GatePins:
    """The opened devices by role; `close()` releases every one of them."""

    lane: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Release every pin; one that fails to close does not keep the others open."""
        for role, device in [*self.inputs.items(), *self.outputs.items()]:
            try:
                device.close()
            except Exception:
                log.exception("gate_pin_close_failed lane=%s role=%s", self.lane, role)


def open_pins(config: GateConfig, pins: dict[str, str], factory: Any,
              on_edge: Callable[[str, bool], None], *, lane: str = "") -> GatePins:
    """Open `pins` (role -> pin name, from `resolve_pins`) on `factory`.

    Outputs first, each in its safe level (red lit, the rest off), then the inputs, so
    no input callback can act on an output that is not there yet. `on_edge(role, active)`
    runs in gpiozero's thread on every input edge (active = the pin's active level).
    A pin that cannot be had closes what was opened and raises DeviceError.
    """
    from gpiozero import DigitalInputDevice, GPIOZeroError, OutputDevice

    opened = GatePins(lane=lane)
    try:
        for role, pin in pins.items():
            if is_output(role):
                nc_red = role == "light_red" and config.red_lamp_contact == "nc"
                opened.outputs[role] = OutputDevice(pin, active_high=config.active_high != nc_red,
                                                    initial_value=role == "light_red", pin_factory=factory)
        for role, pin in pins.items():
            if not is_output(role):
                device = DigitalInputDevice(pin, pull_up=config.input_pull_up, pin_factory=factory)
                device.when_activated = functools.partial(on_edge, role, True)
                device.when_deactivated = functools.partial(on_edge, role, False)
                opened.inputs[role] = device
    except GPIOZeroError as err:
        opened.close()
        where = f"gate {lane}" if lane else "gate"
        raise DeviceError(f"{where}: cannot open pins: {err}") from err
    return opened
