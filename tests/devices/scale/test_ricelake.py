"""Rice Lake RLWS stream vectors, built from figure 11-1 of the 680 Synergy Plus
Technical Manual (section 11.3.1): <STX><POL><wwwwwww><UNIT><G/N><S><TERM>."""

from __future__ import annotations

import pytest

from edge_agent.devices.scale.frame import BadFrame, Notice, WeightFrame
from edge_agent.devices.scale.ricelake import RiceLakeStream


def test_kilograms_gross_valid_cr_lf():
    parser = RiceLakeStream()
    (r,) = parser.feed(b"\x02   12340KG \r\n")
    assert isinstance(r, WeightFrame)
    assert (r.value_kg, r.net, r.stable, r.out_of_range) == (12340.0, False, True, False)
    assert parser.skipped_bytes == 0


def test_negative_net_motion_with_decimals():
    (r,) = RiceLakeStream().feed(b"\x02-  12.50KNM\r")
    assert (r.value_kg, r.net, r.stable) == (-12.5, True, False)


def test_pounds():
    (r,) = RiceLakeStream().feed(b"\x02    1000LG \r\n")
    assert r.value_kg == pytest.approx(453.592, abs=0.001)


def test_over_range_and_centre_of_zero():
    over, zero = RiceLakeStream().feed(b"\x02   99999KGO\r\n\x02       0KGZ\r\n")
    assert over.out_of_range and zero.value_kg == 0.0 and zero.stable


def test_invalid_status_is_a_notice():
    (n,) = RiceLakeStream().feed(b"\x02   12340KGI\r\n")
    assert isinstance(n, Notice) and n.error


def test_bad_unit_rejected_and_next_frame_recovered():
    parser = RiceLakeStream()
    out = parser.feed(b"\x02   12340XG \r\n\x02   12340KG \r\n")
    assert isinstance(out[0], BadFrame) and out[-1].value_kg == 12340.0
