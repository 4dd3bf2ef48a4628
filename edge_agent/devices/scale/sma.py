"""SMA SCP-0499 (Scale Manufacturers Association serial protocol), polled.

Request `<LF>W<CR>`: the displayed weight now. Reply (SCP-0499 "standard scale response
message", as printed in the Fairbanks PR 5410 manual section 5, the Cardinal 190 manual
"Request displayed weight command (SMA format)" and the B-Tek T419S manual 7.1.2)::

    <LF> <s> <r> <n> <m> <f> <xxxxxx.xxx> <uuu> <CR>
    s  status   Z centre of zero, O over capacity, U under capacity, E zero error,
                I initial zero error, T tare error, e weight not displayed, space none
    r  range    1..3 (multi-interval), space
    n  mode     G gross, T tare, N net (lower case: high resolution)
    m  motion   M in motion, space stable
    f  future   space
    weight      10 characters, sign in front when negative; dashes on E / T errors
    uuu         "kg ", "lb ", "g  ", "t  ", "oz "

An unknown command is answered `<LF>?<CR>`. The Cardinal 190 prints an 11-character
weight; both widths are accepted.
"""

from __future__ import annotations

from edge_agent.devices.scale.frame import BadFrame, Display, Frame, Notice, WeightFrame, to_kg
from edge_agent.devices.scale.lines import LineParser

REQUEST = b"\nW\r"
_STATUS = frozenset(b"ZOUEITe ")
_ERRORS = frozenset(b"EITe")
_NUMBER = frozenset(b"0123456789.- ")


class SmaScp0499(LineParser):
    """Sans-I/O parser for SMA replies. `feed` never raises."""

    name = "sma"
    request = REQUEST
    max_len = 48

    def decode_line(self, line: bytes) -> Frame | None:
        start = line.rfind(b"\n")
        if start < 0:
            return BadFrame("no LF before the reply", line + b"\r") if line else None
        return _decode(line[start + 1:], line[start:] + b"\r")


def _decode(body: bytes, raw: bytes) -> Frame:
    if body == b"?":
        return Notice("?", raw, error=True)
    if len(body) not in (18, 19):
        return BadFrame(f"reply of {len(body)} characters", raw)
    status, mode, motion = body[0], body[2], body[3]  # body[1] is the range
    weight, unit_b = body[5:-3], body[-3:]
    if status not in _STATUS or mode not in b"GTNgtn" or motion not in b"M " or not set(weight) <= _NUMBER:
        return BadFrame("field out of its set", raw)
    if status in _ERRORS:
        return Notice("error " + chr(status), raw, error=True)
    if mode in b"Tt":
        return Notice("tare", raw)
    unit = unit_b.decode("ascii", "replace").strip()
    over = status in b"OU"
    text = weight.strip()
    try:
        value = 0.0 if over and not text.strip(b"-") else float(text)
    except ValueError:
        return BadFrame("weight", raw)
    kg = to_kg(value, unit)
    if kg is None:
        return BadFrame("unit " + unit, raw)
    return WeightFrame(value_kg=kg, raw=raw, unit=unit, net=mode in b"Nn",
                   stable=motion != ord("M"), out_of_range=over)


def encode(display: Display) -> bytes:
    if display.over:
        status = "O" if display.value_kg >= 0 else "U"
    elif abs(display.value_kg) < display.division_kg / 4:
        status = "Z"
    else:
        status = " "
    weight = f"{display.value_kg:.3f}".rjust(10)[-10:]
    mode = "N" if display.net else "G"
    return f"\n{status}1{mode}{'M' if display.motion else ' '} {weight}kg \r".encode()


def respond(command: bytes, display: Display) -> bytes:
    """What an SMA device answers to one command (between LF and CR)."""
    if command.strip(b"\n") in (b"W", b"Z"):
        return encode(display)
    return b"\n?\r"
