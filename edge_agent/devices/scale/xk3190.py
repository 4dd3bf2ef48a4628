"""Yaohua XK3190 family and its many clones (A9, A12, A23P, DS3 ...), continuous mode.

Continuous format 1, tF = 0 (XK3190-A23P manual, "Continuous communication format 1";
the same frame in the A9+ and DS3 manuals)::

    byte 1    2      3 .. 8               9          10     11     12
        STX  + / -  six digits, high first  decimals  XOR hi XOR lo ETX
                                            0-4, from the right

XOR of bytes 2 to 9; each nibble sent as hex ASCII (0-9 -> 30h +, A-F -> 37h +).

Continuous format 2, the "=" frame (XK3190-A23P manual, "Continuous communication
format 2")::

    byte 1   2 .. 8                                   9
         =   the displayed value with its decimal     "0" or "-" (sign)
             point, least significant character first

    manual example: -1.00 is sent as =00.1000-

Neither frame carries a unit or a stability flag: the unit is the indicator's setting
(kg on every weighbridge met so far) and stability is decided by the agent.
"""

from __future__ import annotations

from edge_agent.devices.scale.fixed_frames import FixedFrameParser
from edge_agent.devices.scale.frame import BadFrame, Display, Frame, WeightFrame

STX = 0x02
ETX = 0x03
FRAME_LEN = 12
REVERSED_LEN = 9
_DIGITS = frozenset(b"0123456789")
_HEX = b"0123456789ABCDEF"


def xor_check(body: bytes) -> bytes:
    """The two check characters for bytes 2-9 of a frame."""
    x = 0
    for b in body:
        x ^= b
    return bytes([_HEX[x >> 4], _HEX[x & 0x0F]])


class Xk3190(FixedFrameParser):
    """Sans-I/O parser for the 12-byte STX frame. `feed` never raises."""

    name = "xk3190"
    marker = bytes([STX])
    length = FRAME_LEN

    def decode(self, raw: bytes) -> Frame:
        return _decode(raw)


def _decode(raw: bytes) -> Frame:
    if raw[11] != ETX:
        return BadFrame("no ETX where the frame should end", raw)
    sign, digits, decimals = raw[1], raw[2:8], raw[8]
    if sign not in b"+-" or not set(digits) <= _DIGITS or decimals not in b"01234":
        return BadFrame("field out of its set", raw)
    if raw[9:11] != xor_check(raw[1:9]):
        return BadFrame("bad checksum", raw)
    value = int(digits) / 10 ** (decimals - 0x30)
    return WeightFrame(value_kg=round(-value if sign == ord("-") else value, 3), raw=raw)


class Xk3190Reversed(FixedFrameParser):
    """Sans-I/O parser for the "=" frame (value sent least significant first)."""

    name = "xk3190-reversed"
    marker = b"="
    length = REVERSED_LEN

    def decode(self, raw: bytes) -> Frame:
        figures, sign = raw[1:8][::-1], raw[8]
        if sign not in b"0-" or not set(figures) <= _DIGITS | {ord(".")} or figures.count(b".") > 1:
            return BadFrame("field out of its set", raw)
        value = float(figures)
        return WeightFrame(value_kg=-value if sign == ord("-") else value, raw=raw)


def encode(display: Display) -> bytes:
    body = ("-" if display.value_kg < 0 else "+").encode()
    body += f"{min(round(abs(display.value_kg) * 10**display.decimals), 999999):06d}".encode()
    body += str(display.decimals).encode()
    return b"\x02" + body + xor_check(body) + b"\x03"


def encode_reversed(display: Display) -> bytes:
    return b"=" + display.text(7)[::-1].encode() + (b"-" if display.value_kg < 0 else b"0")
