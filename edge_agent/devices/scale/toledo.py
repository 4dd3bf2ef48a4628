"""Mettler Toledo continuous output, the de facto stream of truck-scale indicators.

Layout (METTLER TOLEDO Wildcat Scale Technical Manual, appendix 2 "Continuous Mode
Output", table 6-8; Cardinal 225 Installation and Technical manual, "Continuous output
formats, Toledo", formats 0-3 for the short and checksum-free variants)::

    byte  1    2    3    4    5 ........ 10   11 ....... 16   17   18
         STX  SWA  SWB  SWC  weight (6 digits) tare (6 digits)  CR  [CHK]
    short form: STX SWA SWB SWC weight(6) CR [CHK]        (11 or 12 bytes)
    long form:  STX SWA SWB SWC weight(6) tare(6) CR [CHK] (17 or 18 bytes)

No decimal point and no sign in the digit fields. CHK is the two's complement of the
seven low bits of the sum of every preceding byte, STX and CR included.

Status word A: bits 0-2 decimal point (000 = x100, 001 = x10, 010 = x1, 011 = 0.1 ...
111 = 0.00001), bits 3-4 increment (01 = 1, 10 = 2, 11 = 5).
Status word B: bit 0 net, bit 1 negative, bit 2 out of range, bit 3 motion, bit 4 kg
(0 = lb). Status word C: bits 0-2 unit override (000 = as SWB, 001 = g, 010 = t,
011 = oz, 100 = troy oz, 101 = dwt, 110 = long ton, 111 = custom).
Vendors disagree on the constant bits (bit 5 "always 1", bit 6, the parity bit 7), so
those are not checked; only control characters in the status positions are refused.

Whether a stream carries the checksum is a terminal setting. `checksum=None` learns
it: a frame followed by its valid checksum is taken with it; after two in a row the
parser insists on it (a wrong one is then a rejected frame); after two frames followed
directly by the next STX it stops looking.
"""

from __future__ import annotations

from edge_agent.devices.scale.frame import BadFrame, Display, Frame, WeightFrame, to_kg

STX = 0x02
CR = 0x0D
SHORT_LEN = 11  # STX .. CR, without the checksum
LONG_LEN = 17
_INCREMENT = {1: 1, 2: 2, 3: 5}
_SWC_UNIT = {1: "g", 2: "t", 3: "oz", 4: "ozt", 5: "dwt", 6: "lt"}
_DIGITS = frozenset(b"0123456789 ")
_LOCK_AFTER = 2


def checksum(data: bytes | bytearray) -> int:
    """Two's complement of the 7-bit sum of `data` (STX through CR)."""
    return -sum(b & 0x7F for b in data) & 0x7F


class ToledoContinuous:
    """Sans-I/O parser for the Toledo continuous stream. `feed` never raises."""

    name = "toledo"

    def __init__(self, checksum: bool | None = None) -> None:
        self._buf = bytearray()
        self._mode = checksum  # None = not known yet
        self._streak_checked = 0
        self._streak_plain = 0
        self.frames = 0
        self.rejected = 0
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        buf = self._buf
        while buf:
            start = buf.find(STX)
            if start < 0:
                self.skipped_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.skipped_bytes += start
                del buf[:start]
            result, used = self._take(buf)
            if used == 0:
                break
            del buf[:used]
            if result is not None:
                out.append(result)
                if isinstance(result, BadFrame):
                    self.rejected += 1
                else:
                    self.frames += 1
        return out

    # ------------------------------------------------------------------ private

    def _take(self, buf: bytearray) -> tuple[Frame | None, int]:
        """Decode the frame at buf[0] (an STX): (value, bytes used); used 0 = need more."""
        cr = buf.find(CR, 1, LONG_LEN)
        if cr < 0:
            if len(buf) < LONG_LEN:
                return None, 0
            return BadFrame("no CR where the frame should end", bytes(buf[:LONG_LEN])), 1
        length = cr + 1
        if length not in (SHORT_LEN, LONG_LEN):
            # A truncated frame, or an STX inside garbage: drop only this STX, since the
            # CR found may end the next, intact frame.
            return BadFrame(f"frame of {length} bytes", bytes(buf[:length])), 1
        body = buf[:length]
        if any((b & 0x7F) < 0x20 for b in body[1:4]):
            return BadFrame("control character in a status word", bytes(body)), 1
        if any((b & 0x7F) not in _DIGITS for b in body[4:cr]):
            return BadFrame("non-digit in a weight field", bytes(body)), 1
        if self._mode is False:
            return self._decode(bytes(body)), length
        if len(buf) <= length:
            return None, 0  # the checksum, or the next STX, decides
        expected = checksum(body)
        following = buf[length]
        if (following & 0x7F) == expected and (following != STX or self._mode):
            self._streak_checked += 1
            self._streak_plain = 0
            if self._mode is None and self._streak_checked >= _LOCK_AFTER:
                self._mode = True
            return self._decode(bytes(buf[:length + 1])), length + 1
        if self._mode:
            # Drop only the STX: if these bytes were garbage, the "checksum" may be the
            # STX of the next, intact frame.
            return BadFrame("bad checksum", bytes(buf[:length + 1])), 1
        self._streak_checked = 0
        if following == STX:
            self._streak_plain += 1
            if self._streak_plain >= _LOCK_AFTER:
                self._mode = False
        return self._decode(bytes(body)), length

    def _decode(self, raw: bytes) -> Frame:
        swa, swb, swc = (b & 0x7F for b in raw[1:4])
        exponent = 2 - (swa & 0x07)
        weight = _number(raw[4:10]) * 10.0**exponent
        tare = _number(raw[10:16]) * 10.0**exponent if len(raw) >= LONG_LEN else None
        unit = _SWC_UNIT.get(swc & 0x07, "kg" if swb & 0x10 else "lb")
        if swc & 0x07 == 7:
            return BadFrame("custom unit", raw)
        sign = -1.0 if swb & 0x02 else 1.0
        increment = _INCREMENT.get((swa >> 3) & 0x03)
        return WeightFrame(
            value_kg=to_kg(sign * weight, unit) or 0.0,
            raw=raw,
            unit=unit,
            net=bool(swb & 0x01),
            stable=not swb & 0x08,
            out_of_range=bool(swb & 0x04),
            tare_kg=to_kg(tare, unit) if tare is not None else None,
            division_kg=to_kg(increment * 10.0**exponent, unit) if increment else None,
        )


def _number(field: bytes) -> int:
    return int(bytes(b & 0x7F for b in field).replace(b" ", b"0"))


def encode(display: Display, *, tare: bool = True, with_checksum: bool = True) -> bytes:
    """The frame a Toledo terminal sends for `display` (kg, 0-5 decimals)."""
    # The digits count in units of 10**exponent; a 20 kg weighbridge sends tens (x10).
    exponent = -display.decimals
    step = round(display.division_kg * 10**display.decimals)
    while step >= 10 and step % 10 == 0 and exponent < 2:
        step //= 10
        exponent += 1
    inc_code = {1: 1, 2: 2, 5: 3}.get(step, 1)
    swa = 0x20 | (2 - exponent) | inc_code << 3
    swb = 0x20 | 0x10 | display.net | (display.value_kg < 0) << 1 | display.over << 2 | display.motion << 3
    digits = f"{min(round(abs(display.value_kg) / 10.0**exponent), 999999):06d}"
    frame = bytes([STX, swa, swb, 0x20]) + digits.encode()
    if tare:
        frame += f"{min(round(display.tare_kg / 10.0**exponent), 999999):06d}".encode()
    frame += b"\r"
    return frame + bytes([checksum(frame)]) if with_checksum else frame
