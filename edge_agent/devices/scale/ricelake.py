"""Rice Lake Weighing Systems stream format (RLWS).

Layout (Rice Lake 680 Synergy Plus Technical Manual, 11.3.1 "Rice Lake Weighing Systems
Stream Format"; the same figure in the 380/381, 480 and 482 manuals)::

    <STX> <POL> <wwwwwww> <UNIT> <G/N> <S> <TERM>
    STX   02 hex
    POL   space positive, "-" negative
    w     7 characters right-justified with the decimal point, leading zeros as spaces
    UNIT  L pounds, K kilograms, T tons, G grams, O ounces
    G/N   G gross, N net
    S     space valid, I invalid, M motion, O over/under range, Z centre of zero
    TERM  CR LF or CR

The stream has no checksum; every field is checked against its set instead.
"""

from __future__ import annotations

from edge_agent.devices.scale.fixed_frames import FixedFrameParser
from edge_agent.devices.scale.frame import BadFrame, Display, Frame, Notice, WeightFrame, to_kg

STX = 0x02
CR = 0x0D
FRAME_LEN = 13  # STX .. CR
_UNITS = {ord("L"): "lb", ord("K"): "kg", ord("T"): "ton", ord("G"): "g", ord("O"): "oz"}
_FIGURES = frozenset(b"0123456789. ")


class RiceLakeStream(FixedFrameParser):
    """Sans-I/O parser for the RLWS stream. `feed` never raises."""

    name = "rlws"
    marker = bytes([STX])
    length = FRAME_LEN

    def decode(self, raw: bytes) -> Frame:
        return _decode(raw)

    def _skip(self, n: int) -> None:
        junk = self._buf[:n]
        # The LF of a CR LF terminator is part of the previous frame, not garbage.
        self.skipped_bytes += n - (junk[:1] == b"\n")
        del self._buf[:n]


def _decode(raw: bytes) -> Frame:
    pol, figures, unit_b, mode, status = raw[1], raw[2:9], raw[9], raw[10], raw[11]
    if raw[12] != CR:
        return BadFrame("no CR where the frame should end", raw)
    if pol not in b" -" or not set(figures) <= _FIGURES or unit_b not in _UNITS or mode not in b"GN" \
            or status not in b" IMOZ":
        return BadFrame("field out of its set", raw)
    if status == ord("I"):
        return Notice("invalid", raw, error=True)
    text = figures.strip()
    over = status == ord("O")
    try:
        value = float(text) if text else 0.0
    except ValueError:
        return BadFrame("figures", raw)
    if not text and not over:
        return BadFrame("no figures", raw)
    unit = _UNITS[unit_b]
    return WeightFrame(value_kg=to_kg(-value if pol == ord("-") else value, unit) or 0.0, raw=raw, unit=unit,
                   net=mode == ord("N"), stable=status != ord("M"), out_of_range=over)


def encode(display: Display) -> bytes:
    status = "O" if display.over else ("M" if display.motion else " ")
    figures = f"{abs(display.value_kg):.{display.decimals}f}".rjust(7)[-7:]
    pol = "-" if display.value_kg < 0 else " "
    return f"\x02{pol}{figures}K{'N' if display.net else 'G'}{status}\r\n".encode()
