"""A&D stream vectors: `ST,NT,+0012.34kg` is the example printed in the AD-4404
manual, 9.2.6; header, weight-type and out-of-range rules from the AD-4406 manual, 13.2;
the balance line `ST,+00123.45  g` has the same A&D data format without header 2."""

from __future__ import annotations

import pytest

from edge_agent.devices.scale.and_gs import AndStream, encode
from edge_agent.devices.scale.frame import BadFrame, Display, Notice, WeightFrame


def test_manual_example_net_stable():
    (r,) = AndStream().feed(b"ST,NT,+0012.34kg\r\n")
    assert isinstance(r, WeightFrame)
    assert (r.value_kg, r.net, r.stable, r.out_of_range) == (12.34, True, True, False)


def test_truck_scale_gross_unstable_cr_only():
    (r,) = AndStream().feed(b"US,GS,+0012340kg\r")
    assert (r.value_kg, r.net, r.stable) == (12340.0, False, False)


def test_negative_and_decimal_comma():
    (r,) = AndStream().feed(b"ST,GS,-0001,50kg\r\n")
    assert r.value_kg == -1.5


def test_out_of_range_figures_are_spaces():
    (r,) = AndStream().feed(b"OL,GS,+    .  kg\r\n")
    assert r.out_of_range and r.value_kg == 0.0


def test_balance_format_without_header_two():
    (r,) = AndStream().feed(b"ST,+00123.45  g\r\n")
    assert r.value_kg == pytest.approx(0.12345) and r.unit == "g"


def test_tonnes():
    (r,) = AndStream().feed(b"ST,GS,+0024.36 t\r\n")
    assert r.value_kg == 24360.0


def test_counting_and_tare_are_notices():
    out = AndStream().feed(b"QT,+0000123 PC\r\nST,TR,+0001200kg\r\n")
    assert all(isinstance(n, Notice) for n in out) and len(out) == 2


def test_garbage_glued_in_front_is_dropped_from_the_frame():
    parser = AndStream()
    (r,) = parser.feed(b"\x00\xffST,GS,+00ST,GS,+0012340kg\r\n")
    assert r.value_kg == 12340.0 and r.raw == b"ST,GS,+0012340kg\r\n"


def test_garbled_frame_rejected():
    parser = AndStream()
    out = parser.feed(b"ST,GS,+00?2340kg\r\nST,GS,+0012340kg\r\n")
    assert isinstance(out[0], BadFrame) and out[1].value_kg == 12340.0 and parser.rejected == 1


def test_encoder_round_trip():
    (r,) = AndStream().feed(encode(Display(24000, motion=True)))
    assert r.value_kg == 24000.0 and r.stable is False
