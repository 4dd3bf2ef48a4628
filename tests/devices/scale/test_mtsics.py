"""MT-SICS responses: vectors from the MT-SICS Reference Manual (S, SI, Z, T pages and
the general error messages). The `S S      100.00 g` line is the manual's own example."""

from __future__ import annotations

import pytest

from edge_agent.devices.scale.frame import BadFrame, Display, Notice, WeightFrame
from edge_agent.devices.scale.mtsics import REQUEST, MtSics, command_outcome, respond


def test_manual_example_stable_weight():
    (r,) = MtSics().feed(b"S S      100.00 g\r\n")
    assert isinstance(r, WeightFrame)
    assert (r.value_kg, r.unit, r.stable, r.net) == (0.1, "g", True, False)


def test_dynamic_weight_from_si():
    (r,) = MtSics().feed(b"S D     12340 kg\r\n")
    assert (r.value_kg, r.stable) == (12340.0, False)


def test_negative_weight():
    (r,) = MtSics().feed(b"S S        -60 kg\r\n")
    assert r.value_kg == -60.0


@pytest.mark.parametrize("line", [b"S +\r\n", b"S -\r\n"])
def test_overload_and_underload_are_out_of_range(line):
    (r,) = MtSics().feed(line)
    assert isinstance(r, WeightFrame) and r.out_of_range


@pytest.mark.parametrize(("line", "code", "error"), [
    (b"S I\r\n", "S I", True),
    (b"Z A\r\n", "Z A", False),
    (b"Z I\r\n", "Z I", True),
    (b"ES\r\n", "ES", True),
    (b"ET\r\n", "ET", True),
    (b"EL\r\n", "EL", True),
])
def test_acknowledgements_and_errors_are_notices(line, code, error):
    (n,) = MtSics().feed(line)
    assert isinstance(n, Notice) and n.code == code and n.error is error


def test_tare_reply_is_not_a_weighing():
    (n,) = MtSics().feed(b"T S       1200 kg\r\n")
    assert isinstance(n, Notice) and n.code.startswith("tare")


def test_garbled_line_is_rejected_and_next_line_recovered():
    parser = MtSics()
    out = parser.feed(b"S S   12#40 kg\r\nS S      12340 kg\r\n")
    assert isinstance(out[0], BadFrame) and out[1].value_kg == 12340.0
    assert parser.rejected == 1


def test_unknown_unit_is_rejected():
    (r,) = MtSics().feed(b"S S      12340 PCS\r\n")
    assert isinstance(r, BadFrame)


def test_poll_request_and_device_side():
    assert REQUEST == b"SI\r\n"
    assert respond(b"S", Display(100, motion=True)) == b"S I\r\n"
    assert respond(b"XYZ", Display(100)) == b"ES\r\n"
    (r,) = MtSics().feed(respond(b"SI", Display(24000)))
    assert r.value_kg == 24000.0 and r.stable


@pytest.mark.parametrize(("reply", "done", "says"), [
    (b"Z A\r\n", True, "zeroed"),
    (b"Z +\r\n", False, "above the zero-setting range"),
    (b"Z -\r\n", False, "below the zero-setting range"),
    (b"T S      1240 kg\r\n", True, "tared at 1240 kg"),
    (b"T -\r\n", False, "below the taring range"),
    (b"ES\r\n", False, "did not understand"),
    (b"EL\r\n", False, "refused the command"),
    (b"S S      1240 kg\r\n", False, "a weight, not an answer"),
    (b"Q?\r\n", False, "unreadable reply"),
])
def test_zero_and_tare_replies_become_a_technicians_answer(reply, done, says):
    (frame,) = MtSics().feed(reply)
    outcome = command_outcome(frame)
    assert outcome[0] is done and says in outcome[1]
