"""Every place that compares plates uses the one normal form of edge_agent.plates.

The lane ties a camera's read to a declaration, the rules compare an indicator's plate
with the record's and with the read, and an officer types a plate on the console: if
any of them spelled plates its own way, a plate would match in one place and not in the
other (Đ12 was D12 to the cameras and DJ12 to the rules; Ш12 was S12 and 12).
"""

from datetime import UTC, datetime

import pytest

from edge_agent.console import forms
from edge_agent.local_rules import fields
from edge_agent.models import Observations, Party, PreArrival
from edge_agent.plates.association import PlateIndex
from edge_agent.plates.normal_form import normalize_plate

# The Serbian and Macedonian letters without a Latin look-alike are read as the Latin
# letter a foreign camera or clerk would write (by shape where there is one, else the
# first letter of the transliteration), never dropped and never two letters, so that a
# plate keeps its length.
CASES = [
    ("Đ12", "D12"), ("đ 12", "D12"), ("Ђ12", "D12"), ("ђ-12", "D12"),
    ("Ш12", "S12"), ("Ж12", "Z12"), ("Ч12", "C12"), ("Ћ12", "C12"), ("Џ12", "D12"),
    ("Љ12", "L12"), ("Њ12", "N12"), ("ВG 123-АА", "BG123AA"), ("СК 1234 РН", "CK1234PH"),
    ("ŠA-123.AB", "SA123AB"), ("bg·123·čć", "BG123CC"), ("ÖZ 34 ĞŞ 12", "OZ34GS12"),
    ("0D 1I 8B", "0D1I8B"),  # look-alikes are kept as read: resolving them is association's job
]


@pytest.mark.parametrize(("raw", "normal"), CASES)
def test_the_normal_form(raw, normal):
    assert normalize_plate(raw) == normal


@pytest.mark.parametrize(("raw", "normal"), CASES)
def test_the_rules_see_the_plate_the_cameras_see(raw, normal):
    record = PreArrival(reference="R1", tractor_plate=raw, trailer_plate=raw, gross_kg=1000,
                        consignor=Party(name="A"), consignee=Party(name="B"))
    seen = Observations(lane="L1", tractor_plate=raw, trailer_plate=raw)
    facts = fields.extract(record, seen, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert facts["tractor_plate"] == facts["trailer_plate"] == facts["plate_read"] == (normal,)
    assert fields.NORMALIZERS["plate"](raw) == normal  # what an indicator's value goes through


@pytest.mark.parametrize(("raw", "normal"), CASES)
def test_a_declared_plate_is_found_by_the_read_of_it(raw, normal):
    index = PlateIndex()
    index.add(PreArrival(reference="R1", tractor_plate=raw, gross_kg=1000,
                         consignor=Party(name="A"), consignee=Party(name="B")))
    found = index.match(normal)
    if len(normal) >= index.min_length:
        assert found is not None and found.reference == "R1" and found.quality == "exact"
    else:
        assert found is None


@pytest.mark.parametrize(("raw", "normal"), [c for c in CASES if 2 <= len(c[1]) <= 12])
def test_an_officer_typing_the_plate_gets_the_same_text(raw, normal):
    form = forms.plate_form({"plate": raw, "role": "tractor", "reason": "camera missed it"})
    assert form.ok, form.errors
    assert form.values["plate"] == normal
