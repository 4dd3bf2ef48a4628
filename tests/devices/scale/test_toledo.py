"""Mettler Toledo continuous output: byte-exact vectors and the checksum rule.

Every vector is built byte by byte from the layout in the METTLER TOLEDO Wildcat Scale
Technical Manual, appendix 2 (table 6-8, status tables 6-9 to 6-11) and the Cardinal
225 manual's Toledo formats 0-3 (short / long, with and without checksum). The check
bytes were computed by hand: two's complement of the 7-bit sum of STX through CR.
"""

from __future__ import annotations

import pytest

from edge_agent.devices.scale.frame import BadFrame, Display, WeightFrame
from edge_agent.devices.scale.toledo import ToledoContinuous, checksum, encode

# SWA 0x31: bit 5 set, decimal code 001 (x10), increment code 10 (2) -> 20 kg division.
# SWB 0x30: bit 5 set, bit 4 kg; gross, positive, in range, no motion. SWC 0x20.
LONG_CHK = b"\x02\x31\x30\x20" + b"001234" + b"000000" + b"\r" + b"\x26"  # 18 bytes
SHORT_CHK = b"\x02\x31\x30\x20" + b"001234" + b"\r" + b"\x46"  # 12 bytes
LONG_PLAIN = b"\x02\x31\x30\x20" + b"001234" + b"000000" + b"\r"  # 17 bytes
SHORT_PLAIN = b"\x02\x31\x30\x20" + b"001234" + b"\r"  # 11 bytes
# SWB 0x39: net (bit 0), motion (bit 3), kg; 500 x10 = 5000 kg net over a 1200 kg tare.
NET_MOTION = b"\x02\x31\x39\x20" + b"000500" + b"000120" + b"\r" + b"\x1f"


def test_long_frame_with_checksum():
    (r,) = ToledoContinuous().feed(LONG_CHK)
    assert isinstance(r, WeightFrame)
    assert (r.value_kg, r.net, r.stable, r.out_of_range, r.unit) == (12340.0, False, True, False, "kg")
    assert r.division_kg == 20.0 and r.tare_kg == 0.0
    assert r.raw == LONG_CHK


def test_short_frame_with_checksum_has_no_tare():
    (r,) = ToledoContinuous().feed(SHORT_CHK)
    assert r.value_kg == 12340.0 and r.tare_kg is None and r.raw == SHORT_CHK


@pytest.mark.parametrize("frame", [LONG_PLAIN, SHORT_PLAIN])
def test_frames_without_checksum(frame):
    parser = ToledoContinuous()
    # Alone, a frame waits for the next byte: it may still be followed by a checksum.
    assert parser.feed(frame) == []
    # Two frames followed by an STX tell the parser there is no checksum: no more waiting.
    out = parser.feed(frame * 3)
    assert [r.value_kg for r in out] == [12340.0] * 4
    assert all(r.raw == frame for r in out)
    assert parser.rejected == 0


def test_net_motion_and_tare_give_gross():
    (r,) = ToledoContinuous().feed(NET_MOTION)
    assert (r.value_kg, r.net, r.stable, r.tare_kg, r.gross_kg) == (5000.0, True, False, 1200.0, 6200.0)


def test_sign_range_and_pounds_from_swb():
    negative = b"\x02\x31\x32\x20" + b"000004" + b"\r"
    over = b"\x02\x31\x34\x20" + b"000000" + b"\r"
    pounds = b"\x02\x32\x20\x20" + b"001000" + b"\r"  # SWA x1, SWB bit 4 clear: lb
    parser = ToledoContinuous(checksum=False)
    neg, ovr, lb = parser.feed(negative + over + pounds)
    assert neg.value_kg == -40.0 and ovr.out_of_range and lb.unit == "lb"
    assert lb.value_kg == pytest.approx(453.592, abs=0.001)


def test_decimal_point_codes():
    # SWA decimal code 100: XXXX.XX; increment 01.
    frame = b"\x02\x2c\x30\x20" + b"012345" + b"\r"
    (r,) = ToledoContinuous(checksum=False).feed(frame)
    assert r.value_kg == pytest.approx(123.45) and r.division_kg == pytest.approx(0.01)


def test_parity_bit_is_ignored():
    frame = bytes(b | 0x80 if i in (1, 2) else b for i, b in enumerate(SHORT_PLAIN))
    (r,) = ToledoContinuous(checksum=False).feed(frame)
    assert r.value_kg == 12340.0


def test_bad_checksum_is_rejected_once_checksums_are_known():
    parser = ToledoContinuous()
    bad = LONG_CHK[:-1] + b"\x27"
    out = parser.feed(LONG_CHK * 2 + bad + LONG_CHK)
    assert [type(f) for f in out] == [WeightFrame, WeightFrame, BadFrame, WeightFrame]
    assert out[2].reason == "bad checksum"
    assert parser.rejected == 1


def test_explicit_checksum_mode_rejects_the_first_bad_frame():
    parser = ToledoContinuous(checksum=True)
    out = parser.feed(LONG_CHK[:-1] + b"\x00" + LONG_CHK)
    assert [type(f) for f in out] == [BadFrame, WeightFrame]


def test_truncated_frame_is_rejected_and_the_next_recovered():
    parser = ToledoContinuous()
    truncated = LONG_CHK[:7] + LONG_CHK[10:]
    out = parser.feed(LONG_CHK + truncated + LONG_CHK + LONG_CHK)
    assert [f.value_kg for f in out if isinstance(f, WeightFrame)] == [12340.0] * 3
    assert parser.rejected >= 1


def test_non_digit_weight_is_rejected():
    parser = ToledoContinuous(checksum=False)
    out = parser.feed(b"\x02\x31\x30\x20" + b"00X234" + b"\r" + SHORT_PLAIN + SHORT_PLAIN)
    assert isinstance(out[0], BadFrame) and out[0].reason.startswith("non-digit")
    assert [f.value_kg for f in out if isinstance(f, WeightFrame)] == [12340.0, 12340.0]


def test_checksum_function_matches_the_vectors():
    assert checksum(LONG_PLAIN) == 0x26 and checksum(SHORT_PLAIN) == 0x46


def test_encoder_round_trip():
    for display in (Display(24000), Display(-60, motion=True), Display(5000, net=True, tare_kg=1200)):
        (r,) = ToledoContinuous().feed(encode(display))
        assert r.value_kg == display.value_kg and r.stable is not display.motion
        assert r.net is display.net
    assert encode(Display(12340)) == LONG_CHK
