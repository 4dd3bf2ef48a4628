"""Normalisation of the values indicators compare: names, plates, HS codes, codes.

Indicators are written once by the RAU and compared against records typed by many
hands in three scripts, so both sides go through the same functions before any
comparison:

- names (companies, declarants): Serbian and Macedonian Cyrillic transliterated to
  Latin (the official Serbian Latin alphabet; Macedonian per the Macedonian Latin
  transliteration used on passports: Ѓ -> Gj, Ќ -> Kj, Ѕ -> Dz), diacritics removed
  (Albanian ë, ç; Serbian č, ć, š, ž, đ), upper case, punctuation dropped and legal-form
  words (SH.P.K., D.O.O., DOOEL, ДОО, LLC, GmbH ...) removed at either end;
- plates: the one normal form of edge_agent.plates (cameras, the lane and the rules
  must agree on it), re-exported here beside the other field normalisers;
- HS codes: digits only (2402.20.90 -> 24022090);
- codes (procedure, office, country): upper case, trimmed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from edge_agent.plates.normal_form import normalize_plate

__all__ = [
    "LEGAL_FORMS",
    "name_tokens",
    "normalize_code",
    "normalize_hs",
    "normalize_name",
    "normalize_plate",
    "normalize_text",
    "strip_diacritics",
    "transliterate",
]

# Serbian Cyrillic -> Serbian Latin (one-to-one by the official alphabets), plus the
# Macedonian letters that Serbian lacks.
_CYRILLIC = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Ђ": "Dj", "Е": "E", "Ж": "Z",
    "З": "Z", "И": "I", "Ј": "J", "К": "K", "Л": "L", "Љ": "Lj", "М": "M", "Н": "N",
    "Њ": "Nj", "О": "O", "П": "P", "Р": "R", "С": "S", "Т": "T", "Ћ": "C", "У": "U",
    "Ф": "F", "Х": "H", "Ц": "C", "Ч": "C", "Џ": "Dz", "Ш": "S",
    # Macedonian
    "Ѓ": "Gj", "Ќ": "Kj", "Ѕ": "Dz",
    # Letters of neighbouring Cyrillic alphabets seen on transit records
    "Й": "J", "Щ": "Sht", "Ъ": "A", "Ь": "", "Ю": "Yu", "Я": "Ya", "Ы": "Y", "Э": "E",
    "Є": "Ye", "І": "I", "Ї": "Yi", "Ґ": "G", "Ё": "E",
}
_CYRILLIC.update({k.lower(): v.lower() for k, v in list(_CYRILLIC.items())})
# Latin letters that Unicode does not decompose into a base letter and a mark.
_LATIN_SPECIAL = {"Đ": "Dj", "đ": "dj", "Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae",
                  "Œ": "OE", "œ": "oe", "ß": "ss", "ı": "i", "Þ": "Th", "þ": "th", "Ħ": "H", "ħ": "h"}
_TRANSLIT = str.maketrans({**_CYRILLIC, **_LATIN_SPECIAL})

# Legal-form words, written as they are after normalisation (dots removed, upper case).
# Regional forms first: Albanian (SH.P.K., SH.A.), Serbian/Montenegrin/Bosnian/Croatian/
# Slovenian (D.O.O., A.D., D.D.), Macedonian (ДОО, ДООЕЛ, АД, ТП), Bulgarian (ООД, ЕООД,
# ЕАД), Greek, Romanian, Turkish, then the common international ones.
LEGAL_FORMS: frozenset[tuple[str, ...]] = frozenset(
    tuple(form.split())
    for form in (
        "SHPK", "SHA", "SH PK", "SH P K", "DOO", "DOOEL", "DOOL", "AD", "DD", "OD", "KD", "SZR",
        "TP", "OOD", "EOOD", "EAD", "ET", "SRL", "SA", "SC", "AE", "EPE", "IKE", "OE",
        "AS", "LTD STI", "STI", "LTD", "LLC", "INC", "CORP", "CO", "PLC", "LIMITED",
        "GMBH", "GMBH CO KG", "CO KG", "KG", "AG", "OHG", "UG", "SP Z OO", "SPZOO", "SRO", "KFT",
        "ZRT", "NYRT", "BV", "NV", "SPA", "SAS", "SARL", "OY", "AB", "APS",
    )
)
_MAX_FORM_WORDS = max(len(f) for f in LEGAL_FORMS)
_NON_WORD = re.compile(r"[^0-9A-Z]+")


def transliterate(text: str) -> str:
    """Cyrillic (Serbian, Macedonian and neighbours) to Latin, by sound."""
    return text.translate(_TRANSLIT)


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=4096)
def normalize_name(name: str) -> str:
    """A company or person name reduced to comparable words.

    >>> normalize_name("Drini Trade SH.P.K.")
    'DRINI TRADE'
    >>> normalize_name("ТРГОВИНА ЕКСПРЕС ДОО")
    'TRGOVINA EKSPRES'
    """
    text = strip_diacritics(transliterate(name)).upper()
    # Dots join abbreviations (S.H.P.K. -> SHPK) instead of splitting them into letters.
    text = text.replace(".", "").replace("&", " ")
    words = [w for w in _NON_WORD.split(text) if w]
    words = _drop_legal_forms(words)
    return " ".join(words)


def _drop_legal_forms(words: list[str]) -> list[str]:
    # Legal forms are written after the name (Drini Trade SHPK) and, in Macedonian
    # usage, sometimes before it (ДООЕЛ Трговина); a name made only of such words is kept.
    changed = True
    out = words
    while changed and out:
        changed = False
        for size in range(min(_MAX_FORM_WORDS, len(out) - 1), 0, -1):
            if tuple(out[-size:]) in LEGAL_FORMS:
                out = out[:-size]
                changed = True
                break
            if tuple(out[:size]) in LEGAL_FORMS:
                out = out[size:]
                changed = True
                break
    return out or words


def name_tokens(normalized: str) -> frozenset[str]:
    """The words a fuzzy name match must share at least one of (see ops/fuzzy.py)."""
    return frozenset(normalized.split())


def normalize_hs(code: str) -> str:
    """HS/CN/TARIC code with its dots and spaces removed: '2402.20' -> '240220'."""
    return "".join(ch for ch in str(code) if ch.isdigit())


def normalize_code(code: str) -> str:
    """Procedure, office, country and similar codes: trimmed, upper case."""
    return str(code).strip().upper()


def normalize_text(text: str) -> str:
    """Free text (goods descriptions): transliterated, no diacritics, upper case."""
    return " ".join(strip_diacritics(transliterate(str(text))).upper().split())
