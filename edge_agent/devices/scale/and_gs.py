"""A&D indicator stream: `ST,GS,+0012.34kg` and its family.

Layout (A&D AD-4404 Instruction Manual, 9.2.6 "A&D Data Format", example
`ST,NT,+0012.34kg` CR LF; AD-4406 Instruction Manual, 13.2 "Data Format")::

    header1 , header2 , data (8: polarity + 7 figures with the decimal point) unit CR [LF]
    ST stable  US unstable  OL / LO out of range  HD hold  QT counting (balances)
    GS gross   NT net       TR tare   (one-letter G / N / T on some settings)

The data may use a decimal comma; out of range replaces the figures by spaces. Balances
of the same maker send `ST,+00123.45  g` (no header 2, unit in 3 characters), which is
accepted too. The terminator is CR or CR LF.
"""

from __future__ import annotations

import re

from edge_agent.devices.scale.frame import BadFrame, Display, Frame, Notice, WeightFrame, to_kg
from edge_agent.devices.scale.lines import LineParser

_FRAME = re.compile(
    rb"(ST|US|OL|LO|HD|QT),(?:(GS|NT|TR|G|N|T),)?([+-][0-9., ]{5,10}?) *([A-Za-z%]{1,3}) *$"
)


class AndStream(LineParser):
    """Sans-I/O parser for the A&D stream. `feed` never raises."""

    name = "and"
    strip = b"\n"

    def decode_line(self, line: bytes) -> Frame | None:
        return _decode(line) if line else None


def _decode(line: bytes) -> Frame:
    m = _FRAME.search(line)
    raw = line + b"\r\n"
    if m is None:
        return BadFrame("not an A&D frame", raw)
    raw = line[m.start():] + b"\r\n"
    head, kind, data, unit_b = m.groups()
    unit = unit_b.decode().lower()
    if head == b"QT" or unit in ("pc", "pcs", "%"):
        return Notice("not a mass: " + unit, raw)
    figures = data[1:].replace(b",", b".").strip()
    over = head in (b"OL", b"LO") or figures.strip(b".") == b""
    if kind in (b"TR", b"T"):
        return Notice("tare", raw)
    value = 0.0
    if not over:
        if figures.count(b".") > 1 or b" " in figures:
            return BadFrame("figures", raw)
        value = float(figures) * (-1 if data[:1] == b"-" else 1)
    kg = to_kg(value, unit)
    if kg is None:
        return BadFrame("unit " + unit, raw)
    return WeightFrame(
        value_kg=kg,
        raw=raw,
        unit=unit,
        net=kind in (b"NT", b"N"),
        stable=None if head == b"OL" or head == b"LO" else head in (b"ST", b"HD"),
        out_of_range=over,
    )


def encode(display: Display) -> bytes:
    head = "OL" if display.over else ("US" if display.motion else "ST")
    sign = "-" if display.value_kg < 0 else "+"
    figures = display.text(7) if not display.over else "       "
    return f"{head},{'NT' if display.net else 'GS'},{sign}{figures}kg\r\n".encode()
