"""XK3190 vectors. The "=" example `=00.1000-` (-1.00) is printed in the XK3190-A23P
manual, continuous communication format 2. The 12-byte frames are built from format 1
of the same manual; their check characters were computed by hand as the XOR of bytes
2-9 in hex ASCII (0x1F for "+0123400", 0x1E for "-0001002")."""

from __future__ import annotations

from edge_agent.devices.scale.frame import BadFrame, Display, WeightFrame
from edge_agent.devices.scale.xk3190 import Xk3190, Xk3190Reversed, encode, encode_reversed, xor_check

POSITIVE = b"\x02+0123400" + b"1F" + b"\x03"  # +012340, 0 decimals: 12340 kg
NEGATIVE = b"\x02-0001002" + b"1E" + b"\x03"  # -000100, 2 decimals: -1.00 kg


def test_twelve_byte_frames():
    parser = Xk3190()
    pos, neg = parser.feed(POSITIVE + NEGATIVE)
    assert isinstance(pos, WeightFrame) and pos.value_kg == 12340.0 and pos.stable is None
    assert neg.value_kg == -1.0
    assert parser.rejected == 0


def test_bad_xor_rejected():
    parser = Xk3190()
    out = parser.feed(POSITIVE[:9] + b"1E" + b"\x03" + POSITIVE)
    assert isinstance(out[0], BadFrame) and out[0].reason == "bad checksum"
    assert out[-1].value_kg == 12340.0 and parser.rejected == 1


def test_xor_check_and_encoder_match_the_vectors():
    assert xor_check(b"+0123400") == b"1F"
    assert encode(Display(12340)) == POSITIVE
    assert encode(Display(-1.0, decimals=2)) == NEGATIVE


def test_reversed_manual_example():
    (r,) = Xk3190Reversed().feed(b"=00.1000-")
    assert r.value_kg == -1.0


def test_reversed_stream_without_separators():
    parser = Xk3190Reversed()
    out = parser.feed(b"=04321000" * 3 + b"=00.1000-")
    assert [r.value_kg for r in out] == [12340.0] * 3 + [-1.0]
    assert encode_reversed(Display(-1.0, decimals=2)) == b"=00.1000-"


def test_reversed_garbled_rejected():
    parser = Xk3190Reversed()
    out = parser.feed(b"=0432X000=04321000")
    assert isinstance(out[0], BadFrame) and out[-1].value_kg == 12340.0
