"""Mettler Toledo MT-SICS (Standard Interface Command Set), level 0, polled.

Commands end with CR LF; so do responses (MT-SICS Reference Manual, "Command
formats" and "Response formats"; the S / SI / SIR / Z / T pages)::

    S      send stable weight          S S <value> <unit> | S I | S + | S -
    SI     send weight immediately     S S <value> <unit> (stable) | S D ... (dynamic)
    SIR    SI, repeated                as SI, until another command
    Z      zero                        Z A | Z I | Z + | Z -
    T      tare                        T S <value> <unit> | T I | T + | T -
    errors ES (syntax), ET (transmission), EL (logical)

Example from the manual: command `S`, response `S S      100.00 g`. The value is
right-aligned in a 10-character field. `S +` / `S -` (overload, underload) become an
out-of-range reading; the rest are notices.
"""

from __future__ import annotations

import re

from edge_agent.devices.scale.frame import BadFrame, Display, Frame, Notice, WeightFrame, to_kg
from edge_agent.devices.scale.lines import LineParser

REQUEST = b"SI\r\n"
_WEIGHT = re.compile(rb"(S|T) ([SD]) +(-?[0-9]+(?:\.[0-9]*)?) ([A-Za-z]{1,3})$")
_STATUS = re.compile(rb"(S|Z|T|SI|SIR) ([AI+\-])$")
_ERROR = re.compile(rb"(ES|ET|EL)$")


class MtSics(LineParser):
    """Sans-I/O parser for MT-SICS responses. `feed` never raises."""

    name = "mt-sics"
    request = REQUEST
    terminator = b"\n"

    def decode_line(self, line: bytes) -> Frame | None:
        line = line.rstrip(b"\r")
        if not line:
            return None
        raw = line + b"\r\n"
        if m := _WEIGHT.search(line) or _STATUS.search(line) or _ERROR.search(line):
            raw = line[m.start():] + b"\r\n"  # garbage glued in front is not evidence
        if m := _WEIGHT.search(line):
            ident, status, value, unit = m.groups()
            if ident == b"T":
                return Notice(f"tare {value.decode()} {unit.decode()}", raw)
            kg = to_kg(float(value), unit.decode())
            if kg is None:
                return BadFrame("unit " + unit.decode(errors="replace"), raw)
            return WeightFrame(value_kg=kg, raw=raw, unit=unit.decode(), stable=status == b"S")
        if m := _STATUS.search(line):
            ident, status = m.groups()
            if ident.startswith(b"S") and status in (b"+", b"-"):
                return WeightFrame(value_kg=0.0, raw=raw, out_of_range=True)
            return Notice(f"{ident.decode()} {status.decode()}", raw, error=status != b"A")
        if m := _ERROR.search(line):
            return Notice(m.group(1).decode(), raw, error=True)
        return BadFrame("not an MT-SICS response", raw)


ZERO, TARE = b"Z\r\n", b"T\r\n"

# What the Z and T replies mean, in the technician's words (MT-SICS Reference Manual).
_OUTCOMES = {
    "Z A": (True, "zeroed"),
    "Z I": (False, "not zeroed: the scale is in motion or busy; wait until it settles and try again"),
    "Z +": (False, "not zeroed: above the zero-setting range (is something still on the bridge?)"),
    "Z -": (False, "not zeroed: below the zero-setting range"),
    "T I": (False, "no tare: the scale is in motion or busy; wait until it settles and try again"),
    "T +": (False, "no tare: above the taring range"),
    "T -": (False, "no tare: below the taring range (an empty bridge cannot be tared)"),
    "ES": (False, "the indicator did not understand the command (ES): is it an MT-SICS device?"),
    "ET": (False, "transmission error (ET): check the line settings"),
    "EL": (False, "the indicator refused the command (EL): not allowed in its present state"),
}


def command_outcome(frame: Frame) -> tuple[bool, str]:
    """Whether a Z or T command was carried out, and what to tell the technician."""
    if isinstance(frame, Notice):
        if frame.code.startswith("tare "):
            return True, f"tared at {frame.code[5:]}"
        if frame.code in _OUTCOMES:
            return _OUTCOMES[frame.code]
    if isinstance(frame, BadFrame):
        return False, f"unreadable reply: {frame.reason}"
    return False, "the reply was a weight, not an answer to the command"


def encode(display: Display) -> bytes:
    """The SI response for `display`."""
    if display.over:
        return b"S +\r\n" if display.value_kg >= 0 else b"S -\r\n"
    value = f"{display.value_kg:.{display.decimals}f}"
    return f"S {'D' if display.motion else 'S'} {value:>10} kg\r\n".encode()


def respond(command: bytes, display: Display) -> bytes:
    """What an MT-SICS device answers to one command line (without CR LF)."""
    command = command.strip()
    if command in (b"SI", b"SIR"):
        return encode(display)
    if command == b"S":
        return b"S I\r\n" if display.motion else encode(display)
    if command == b"Z":
        return b"Z I\r\n" if display.motion else b"Z A\r\n"
    if command == b"T":
        return b"T I\r\n" if display.motion else f"T S {display.value_kg:>10.{display.decimals}f} kg\r\n".encode()
    return b"ES\r\n"
