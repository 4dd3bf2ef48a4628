"""SMA SCP-0499 vectors, built from the reply layout `<LF><s><r><n><m><f><xxxxxx.xxx><uuu><CR>`
as printed in the Fairbanks PR 5410 manual section 5, the Cardinal 190 manual ("Request
displayed weight command (SMA format)") and the B-Tek T419S manual 7.1.2-7.1.3."""

from __future__ import annotations

import pytest

from edge_agent.devices.scale.frame import BadFrame, Display, Notice, WeightFrame
from edge_agent.devices.scale.sma import REQUEST, SmaScp0499, respond


def test_request_is_lf_w_cr():
    assert REQUEST == b"\x0aW\x0d"


def test_gross_stable():
    (r,) = SmaScp0499().feed(b"\n 1G   12340.000kg \r")
    assert isinstance(r, WeightFrame)
    assert (r.value_kg, r.net, r.stable, r.out_of_range) == (12340.0, False, True, False)


def test_centre_of_zero_net_in_motion():
    (r,) = SmaScp0499().feed(b"\nZ1NM      0.000kg \r")
    assert (r.value_kg, r.net, r.stable) == (0.0, True, False)


def test_pounds_and_negative():
    (r,) = SmaScp0499().feed(b"\n 1G    -100.000lb \r")
    assert r.value_kg == pytest.approx(-45.359, abs=0.001) and r.unit == "lb"


def test_over_capacity_is_out_of_range():
    (r,) = SmaScp0499().feed(b"\nO1G  ----------kg \r")
    assert r.out_of_range


def test_zero_error_and_unknown_command_are_error_notices():
    out = SmaScp0499().feed(b"\nE1G  ----------kg \r\n?\r")
    assert [type(n) for n in out] == [Notice, Notice] and all(n.error for n in out)


def test_cardinal_eleven_character_weight():
    (r,) = SmaScp0499().feed(b"\n 1G    12340.000kg \r")
    assert r.value_kg == 12340.0


def test_wrong_length_rejected_then_recovered():
    parser = SmaScp0499()
    out = parser.feed(b"\n 1G 12340.000kg \r\n 1G   12340.000kg \r")
    assert isinstance(out[0], BadFrame) and out[1].value_kg == 12340.0


def test_device_side():
    assert respond(b"X", Display(0)) == b"\n?\r"
    (r,) = SmaScp0499().feed(respond(b"W", Display(24000, motion=True)))
    assert r.value_kg == 24000.0 and r.stable is False
