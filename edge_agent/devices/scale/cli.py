"""Technician tools: `edge-agent scale monitor|zero|tare` and `edge-agent simulate scale`.

    edge-agent scale monitor --url /dev/ttyUSB0 --protocol toledo
    edge-agent scale monitor --url socket://10.0.0.7:4001 --probe
    edge-agent scale zero --url /dev/ttyUSB0          (MT-SICS indicators)
    edge-agent simulate scale --protocol toledo --tcp 4001 --garbage-every 20

The monitor prints one JSON object per frame: decoded readings, rejected frames and
notices alike, each with the raw bytes in hex. The agent's service must be stopped
first when the line is a local serial port (it can have one reader only).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from edge_agent.devices.scale.frame import BadFrame, Notice, WeightFrame
from edge_agent.devices.scale.protocols import PROTOCOL_NAMES, spec_for


@click.group()
def scale() -> None:
    """Weighbridge tools: live monitor, protocol probe, zero and tare (MT-SICS)."""


def _line_options(command):
    """The serial line's options, shared by every command that talks to an indicator."""
    for option in reversed([
        click.option("--url", required=True, help="/dev/ttyUSB0, /dev/serial/by-id/..., socket://host:port"),
        click.option("--baudrate", type=int, default=9600, show_default=True),
        click.option("--bytesize", type=click.Choice(["7", "8"]), default="8", show_default=True),
        click.option("--parity", type=click.Choice(["N", "E", "O"]), default="N", show_default=True),
        click.option("--stopbits", type=click.Choice(["1", "2"]), default="1", show_default=True),
    ]):
        command = option(command)
    return command


def _open_line(url: str, baudrate: int, bytesize: str, parity: str, stopbits: str):
    import serial

    try:
        return serial.serial_for_url(url, baudrate=baudrate, bytesize=int(bytesize), parity=parity,
                                     stopbits=int(stopbits), timeout=0.05)
    except Exception as err:
        raise click.ClickException(f"cannot open {url}: {err}") from err


@scale.command()
@_line_options
@click.option("--protocol", type=click.Choice(PROTOCOL_NAMES), default="toledo", show_default=True)
@click.option("--probe", "do_probe", is_flag=True, help="Try every protocol and common line setting first.")
@click.option("--poll-interval-s", type=float, default=0.2, show_default=True, help="Seconds between polls.")
@click.option("--count", type=int, default=0, help="Stop after this many frames (0 = until Ctrl-C).")
@click.option("--duration-s", type=float, default=0.0, help="Stop after this many seconds (0 = until Ctrl-C).")
def monitor(url, protocol, do_probe, baudrate, bytesize, parity, stopbits, poll_interval_s, count, duration_s) -> None:
    """Print every frame from an indicator as a JSON line, raw bytes in hex."""
    from edge_agent.devices.scale.probe import probe

    if do_probe:
        found = probe(url, progress=lambda line: click.echo(line, err=True))
        if found is None:
            click.echo(json.dumps({"probe": None, "url": url}))
            raise SystemExit(1)
        click.echo(json.dumps({"probe": found.__dict__, "url": url}))
        click.echo(f"matched {found.protocol} at {found.baudrate} {found.bytesize}{found.parity}{found.stopbits}",
                   err=True)
        protocol, baudrate = found.protocol, found.baudrate
        bytesize, parity, stopbits = str(found.bytesize), found.parity, str(found.stopbits)
    spec = spec_for(protocol)
    port = _open_line(url, baudrate, bytesize, parity, stopbits)
    parser = spec.parser()
    shown = 0
    start = next_poll = time.monotonic()
    try:
        while (not count or shown < count) and (not duration_s or time.monotonic() - start < duration_s):
            if spec.request is not None and time.monotonic() >= next_poll:
                port.write(spec.request)
                next_poll = time.monotonic() + poll_interval_s
            data = port.read(port.in_waiting or 1)
            for frame in parser.feed(data):
                click.echo(json.dumps(_as_json(frame, protocol)))
                shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        port.close()


_answer_timeout = click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
                               help="Seconds to wait for the indicator's answer (zeroing waits for a still bridge).")


@scale.command()
@_line_options
@_answer_timeout
def zero(url, baudrate, bytesize, parity, stopbits, timeout_s) -> None:
    """Zero an MT-SICS indicator (command Z) with the bridge empty; exit 1 if it refused.

    Zero before the first truck of a shift or when the empty bridge drifts. The agent's
    service must be stopped first when the line is a local serial port.
    """
    _send_command(b"Z", url, baudrate, bytesize, parity, stopbits, timeout_s)


@scale.command()
@_line_options
@_answer_timeout
def tare(url, baudrate, bytesize, parity, stopbits, timeout_s) -> None:
    """Tare an MT-SICS indicator (command T) at the weight on it now; exit 1 if it refused."""
    _send_command(b"T", url, baudrate, bytesize, parity, stopbits, timeout_s)


def _send_command(command: bytes, url, baudrate, bytesize, parity, stopbits, timeout_s: float) -> None:
    from edge_agent.devices.scale.mtsics import MtSics, command_outcome

    port = _open_line(url, baudrate, bytesize, parity, stopbits)
    parser = MtSics()
    try:
        port.reset_input_buffer()  # a reply to someone else's earlier poll is not ours
        port.write(command + b"\r\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for frame in parser.feed(port.read(port.in_waiting or 1)):
                if isinstance(frame, WeightFrame):
                    continue  # an SIR stream still running from before: not the answer
                done, message = command_outcome(frame)
                click.echo(json.dumps({"command": command.decode(), "done": done, "message": message,
                                       "raw": frame.raw.hex()}))
                if not done:
                    raise SystemExit(1)
                return
    finally:
        port.close()
    raise click.ClickException(f"no answer to {command.decode()} from {url} within {timeout_s:g} s")


def _as_json(frame, protocol: str) -> dict:
    row: dict = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "protocol": protocol}
    if isinstance(frame, WeightFrame):
        row.update(kind="reading", value_kg=frame.value_kg, unit=frame.unit, net=frame.net,
                   stable=frame.stable, out_of_range=frame.out_of_range, tare_kg=frame.tare_kg)
    elif isinstance(frame, BadFrame):
        row.update(kind="rejected", reason=frame.reason)
    elif isinstance(frame, Notice):
        row.update(kind="notice", code=frame.code, error=frame.error)
    row["raw"] = frame.raw.hex()
    return row
