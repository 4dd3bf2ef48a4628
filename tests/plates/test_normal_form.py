from edge_agent.plates.normal_form import canonical, coerce_to_formats, format_countries, normalize_plate, parse_plate


def test_separators_case_and_spaces_are_stripped():
    assert normalize_plate("bg 123-aa") == "BG123AA"
    assert normalize_plate("  01 123·AB ") == "01123AB"
    assert normalize_plate("A12-E-345") == "A12E345"
    assert normalize_plate("TR.34/ABC|123") == "TR34ABC123"


def test_cyrillic_lookalikes_become_latin():
    # Bulgarian plate typed with Cyrillic letters; Serbian keyboard mixing both.
    assert normalize_plate("СА 1234 ВХ") == "CA1234BX"
    assert normalize_plate("ВG 123-АА") == "BG123AA"
    assert normalize_plate("ЅК 1234 ОР") == "SK1234OP"
    assert normalize_plate("сВ 1234 ах") == "CB1234AX"  # lower-case Cyrillic too


def test_diacritics_are_folded():
    assert normalize_plate("ŠA 123-ČĆ") == "SA123CC"
    assert normalize_plate("Đakovo ŽŽ") == "DAKOVOZZ"
    assert normalize_plate("VŽ 1234-ÖÜ") == "VZ1234OU"


def test_raw_is_kept_beside_normal_form():
    parsed = parse_plate("bg 123-čć")
    assert parsed.raw == "bg 123-čć"
    assert parsed.text == "BG123CC"
    assert parsed.countries == ("AL", "SRB", "NMK")


def test_nothing_left_gives_empty():
    assert normalize_plate(" - . ") == ""


def test_western_balkans_shapes():
    assert format_countries("01123AB") == ("RKS",)
    assert format_countries("08123AB") == ()  # Kosovo districts are 01..07
    assert format_countries("BG1234AA") == ("SRB", "NMK")  # the two formats collide
    assert format_countries("PGAB123") == ("MNE",)
    assert format_countries("A12E345") == ("BIH",)
    assert format_countries("B12E345") == ()  # B is not a BIH plate letter
    assert format_countries("WA12345") == ()  # a Polish plate: foreign, still a plate


def test_canonical_collapses_lookalikes_only():
    assert canonical("BG1O3AA") == canonical("8G103AA")
    assert canonical("BG1O3AA") != canonical("BG1O3AC")


def test_coerce_fixes_lookalikes_into_a_shape():
    fixes = dict(coerce_to_formats("8G12OAA"))
    assert "BG120AA" in fixes
    assert coerce_to_formats("A12E345")[0] == ("A12E345", "BIH")  # already fits: first, unchanged
    assert coerce_to_formats("XYZ") == []
