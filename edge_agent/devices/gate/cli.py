"""`edge-agent gpio test`: a technician checks every wire of a lane's gate.

Interactive (the default): the outputs are listed with numbers; type a number to switch
that output on or off, `all off` to drop everything, `q` to quit. Every input change
(loops, limits, override key, relay monitoring contacts) is printed as it happens.
`--sequence` switches each output on and off in turn and exits; `--watch N` only shows
the inputs for N seconds. Outputs start and end de-energised, red lit.

The agent's service must be stopped first: the pins can have one owner only.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import click

from edge_agent.config import GateConfig
from edge_agent.devices.gate.pinmap import resolve_pins
from edge_agent.devices.gate.pins import make_pin_factory, open_pins
from edge_agent.errors import ConfigError, DeviceError


class Bench:
    """The lane's pins opened raw, without the controller's logic, for wiring checks."""

    def __init__(self, config: GateConfig, factory: Any, echo=click.echo, *, lane: str = "") -> None:
        self.config = config
        self.pins = resolve_pins(config, lane=lane)
        self.echo = echo
        self._lock = threading.Lock()
        try:
            self._devices = open_pins(config, self.pins, factory, on_edge=self._report, lane=lane)
        except DeviceError as err:
            raise DeviceError(f"{err}; is the edge-agent service still running?") from err
        self.outputs: dict[str, Any] = self._devices.outputs
        self.inputs: dict[str, Any] = self._devices.inputs

    def switch(self, role: str, on: bool) -> None:
        self.outputs[role].on() if on else self.outputs[role].off()
        self.echo(f"  output {role:<16} {self.pins[role]:<7} {'ON' if on else 'off'}")

    def all_off(self) -> None:
        for role in self.outputs:
            if role != "light_red":
                self.outputs[role].off()
        self.outputs["light_red"].on()
        self.echo("  all outputs off, red lit")

    def levels(self) -> dict[str, bool]:
        return {role: bool(device.value) for role, device in self.inputs.items()}

    def show_inputs(self) -> None:
        for role, active in self.levels().items():
            self.echo(f"  input  {role:<16} {self.pins[role]:<7} {'ACTIVE' if active else 'idle'}")

    def close(self) -> None:
        self._devices.close()

    def _report(self, role: str, active: bool) -> None:
        with self._lock:
            self.echo(f"  input  {role:<16} {self.pins[role]:<7} -> {'ACTIVE' if active else 'idle'}")


@click.group()
def gpio() -> None:
    """Gate wiring: switch each output, watch each input live."""


@gpio.command("test")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The site file; without it the default pin layout is used.")
@click.option("--lane", default=None, help="The lane to test (default: the first).")
@click.option("--mock", is_flag=True, help="gpiozero's MockFactory instead of the board (a dry run).")
@click.option("--sequence", is_flag=True, help="Switch every output on and off in turn, then exit.")
@click.option("--on-s", default=1.0, show_default=True, help="How long each output stays on in --sequence.")
@click.option("--watch", "watch_s", type=float, default=None, help="Only show the inputs for this many seconds.")
def test(config_path: Path | None, lane: str | None, mock: bool, sequence: bool, on_s: float,
         watch_s: float | None) -> None:
    """Switch each output and watch each input of one lane's gate, live."""
    lane, config = _gate_config(config_path, lane)
    if mock:
        config = config.model_copy(update={"pin_factory": "mock"})
    try:
        factory = make_pin_factory(config.pin_factory)
    except DeviceError as err:
        raise click.ClickException(str(err)) from err
    try:
        bench = Bench(config, factory, lane=lane)
    except (ConfigError, DeviceError) as err:
        factory.close()
        raise click.ClickException(str(err)) from err
    try:
        click.echo(f"gate pins ({config.pinmap}{' + ' + config.hat if config.hat else ''}, {config.pin_factory}, "
                   f"outputs {'active high' if config.active_high else 'active low'}):")
        bench.show_inputs()
        if sequence:
            for role in bench.outputs:
                bench.switch(role, role != "light_red")
                time.sleep(on_s)
                bench.switch(role, role == "light_red")
        elif watch_s is not None:
            click.echo(f"watching the inputs for {watch_s:g} s ...")
            time.sleep(watch_s)
        else:
            _interactive(bench)
    finally:
        bench.all_off()
        bench.close()
        factory.close()


def _interactive(bench: Bench) -> None:
    roles = list(bench.outputs)
    for number, role in enumerate(roles, start=1):
        click.echo(f"  [{number}] {role} ({bench.pins[role]})")
    click.echo("type a number to switch that output, 'i' to list the inputs, 'all off', or 'q' to quit")
    while True:
        try:
            line = click.prompt("gpio", default="", show_default=False).strip().lower()
        except (EOFError, click.Abort):
            return
        if line in ("q", "quit", "exit"):
            return
        if line == "all off":
            bench.all_off()
        elif line == "i":
            bench.show_inputs()
        elif line.isdigit() and 1 <= int(line) <= len(roles):
            role = roles[int(line) - 1]
            bench.switch(role, not bench.outputs[role].value)
        elif line:
            click.echo(f"  ? {line!r}: a number 1-{len(roles)}, 'i', 'all off' or 'q'")


def _gate_config(config_path: Path | None, lane: str | None) -> tuple[str, GateConfig]:
    if config_path is None:
        return "", GateConfig()
    from edge_agent.config import load_config

    try:
        site = load_config(config_path)
    except ConfigError as err:
        raise click.ClickException(str(err)) from err
    if lane is None:
        return site.lanes[0].id, site.lanes[0].gate
    try:
        return lane, site.lane(lane).gate
    except KeyError:
        known = [each.id for each in site.lanes]
        raise click.ClickException(f"no lane {lane!r} in {config_path} (lanes: {known})") from None
