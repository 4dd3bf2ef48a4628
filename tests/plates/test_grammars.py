import random

import pytest

from edge_agent.plates.grammars import ALPHABET, GRAMMAR, TABLE, Country, Grammar
from edge_agent.plates.normal_form import normalize_plate
from edge_agent.simulators.anpr_camera import COUNTRIES, confuse, random_plate


def _simulated(country: str, rng: random.Random) -> str:
    """A plate as the simulator prints it, skipping the shapes it draws that the country
    does not issue (Turkish 2 letters + 2 digits, Greek plates with non-Greek letters)."""
    while True:
        _, printed = random_plate(rng, country)
        text = normalize_plate(printed)
        if country == "TR" and len(text) == 6 and text[2:4].isalpha():
            continue
        if country == "GR" and not set(text[:3]) <= set("ABEHIKMNOPTXYZ"):
            continue
        return printed


@pytest.mark.parametrize("country", COUNTRIES)
def test_every_simulated_plate_fits_its_country_and_reads_back_unchanged(country):
    rng = random.Random(country)
    for _ in range(100):
        text = normalize_plate(_simulated(country, rng))
        assert country in GRAMMAR.fitting(text), text
        # A plate read right stays as it was read, whatever other shapes its look-alikes fit.
        assert GRAMMAR.resolve_text(text)[0].text == text


@pytest.mark.parametrize("country", COUNTRIES)
def test_one_look_alike_is_put_right_by_position_when_the_country_is_known(country):
    rng = random.Random(country)
    grammar = Grammar(c for c in TABLE if c.code == country)
    fixed = 0
    for _ in range(100):
        printed = _simulated(country, rng)
        misread = normalize_plate(confuse(printed, 1, rng))
        fixed += grammar.resolve_text(misread)[0].text == normalize_plate(printed)
    # The rest are swaps the shape cannot see (a letter for a look-alike letter: O/D, I/L)
    # or a read that fits another of the country's shapes (D for 0 in Poland's LL DLDDD).
    assert fixed >= 40, fixed


def test_look_alikes_are_resolved_by_position_among_all_countries():
    best = GRAMMAR.resolve_text("8G 123-AA")[0]
    assert best.text == "BG123AA" and {"SRB", "AL", "NMK"} <= set(best.countries)
    assert best.changed == 1


def test_reader_probabilities_decide_between_look_alikes():
    def rows(text: str, doubt: dict[int, tuple[str, float]]) -> list[list[float]]:
        out = []
        for i, char in enumerate(text):
            row = [0.0] * len(ALPHABET)
            other, p = doubt.get(i, (char, 0.0))
            row[ALPHABET.index(char)] = 1.0 - p
            row[ALPHABET.index(other)] += p
            out.append(row)
        return out

    # The reader prefers 8 at a place only a letter can be: the shape takes B.
    assert GRAMMAR.resolve(rows("8G123AA", {0: ("B", 0.3)}))[0].text == "BG123AA"
    # A swap the reader thought almost impossible is not made to force a shape.
    only = GRAMMAR.resolve(rows("8G123AA", {0: ("B", 0.001)}))[0]
    assert (only.text, only.countries) == ("8G123AA", ())


def test_an_unknown_format_comes_through_with_its_raw_read():
    (reading, *_) = GRAMMAR.resolve_text("QQ 99 QQ 99 Q")
    assert (reading.text, reading.countries, reading.changed) == ("QQ99QQ99Q", (), 0)
    assert GRAMMAR.resolve_text(" - ") == []


def test_us_records_spell_o_as_zero_and_a_home_country_wins_a_tie():
    assert "USA" in GRAMMAR.fitting("0SG719")
    assert "USA" not in GRAMMAR.fitting("OSG719")
    # O/0 as read: the raw O fits European shapes, the US reading spells it 0.
    assert GRAMMAR.resolve_text("OSG719")[0].text == "OSG719"
    us_site = Grammar(TABLE, home=("USA",))
    assert us_site.resolve_text("OSG719")[0].text == "0SG719"


def test_the_table_extends():
    grammar = Grammar((*TABLE, Country("ZZ", ("LLLL-[A-C]D",))))
    assert "ZZ" in grammar.fitting("QQQQB7") and "ZZ" not in grammar.fitting("QQQQD7")
    with pytest.raises(ValueError, match="unknown symbol"):
        Grammar((Country("ZZ", ("LL*D",)),))
