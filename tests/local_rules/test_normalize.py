"""Transliteration, diacritics and legal forms: the cases the RAU's lists meet in SEED records."""

from __future__ import annotations

import pytest

from edge_agent.local_rules.normalize import (
    normalize_code,
    normalize_hs,
    normalize_name,
    normalize_plate,
    transliterate,
)


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Трговина", "Trgovina"),           # Serbian/Macedonian shared letters
        ("Ђорђе Чолић", "Djordje Colić"),   # Serbian Ђ and Ч (ć is Latin already)
        ("Љубљана Њива Џеп", "Ljubljana Njiva Dzep"),
        ("Ѓорѓи Ќосевски", "Gjorgji Kjosevski"),  # Macedonian Ѓ, Ќ
        ("Ѕвезда", "Dzvezda"),               # Macedonian Ѕ
        ("Шабац Жупа Ћуприја", "Sabac Zupa Cuprija"),
    ],
)
def test_cyrillic_to_latin(cyrillic, latin):
    assert normalize_name(cyrillic) == normalize_name(latin)
    assert transliterate(cyrillic).isascii() or "ć" in transliterate(cyrillic)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Drini Trade SH.P.K.", "DRINI TRADE"),
        ("DRINI TRADE SHPK", "DRINI TRADE"),
        ("Drini Trade sh.p.k", "DRINI TRADE"),
        ("Hëna Çelik Sh.A.", "HENA CELIK"),
        ("Trgovina Ekspres d.o.o.", "TRGOVINA EKSPRES"),
        ("ТРГОВИНА ЕКСПРЕС ДОО", "TRGOVINA EKSPRES"),
        ("ДООЕЛ Трговина Експрес", "TRGOVINA EKSPRES"),   # Macedonian form before the name
        ("Trgovina Ekspres DOOEL Skopje", "TRGOVINA EKSPRES DOOEL SKOPJE"),  # not at an end: kept
        ("Balkan Logistik DOO", "BALKAN LOGISTIK"),
        ("Euro Möbel GmbH & Co. KG", "EURO MOBEL"),
        ("Polska Spedycja Sp. z o.o.", "POLSKA SPEDYCJA"),
        ("Istanbul Nakliyat Ltd. Şti.", "ISTANBUL NAKLIYAT"),
        ("Acme Trading LLC", "ACME TRADING"),
        ("Đokić i sinovi", "DJOKIC I SINOVI"),
        ("DOO", "DOO"),  # nothing but a legal form: kept, or the name would vanish
    ],
)
def test_names_lose_case_diacritics_punctuation_and_legal_forms(written, expected):
    assert normalize_name(written) == expected


def test_plates_read_cyrillic_letters_by_shape():
    # Р on a plate is the Latin P, Н is H, В is B: plates only use look-alike letters.
    assert normalize_plate("СК 1234 РН") == "CK1234PH"
    assert normalize_plate("ŠA-123.AB") == "SA123AB"
    assert normalize_plate(" bg 1234 ab ") == "BG1234AB"


def test_hs_codes_and_codes():
    assert normalize_hs("2402.20.90") == "24022090"
    assert normalize_hs("8471 30 00 00") == "8471300000"
    assert normalize_code(" tir ") == "TIR"
