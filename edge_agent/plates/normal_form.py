"""Plate text: one normal form for every read, and what its shape says about the country.

A plate reaches the agent from a camera, from local recognition, from a SEED record or
from an officer's keyboard, each spelling it its own way: `BG 123-AA`, `bg123aa`,
`ВG 123-АА` (Cyrillic В and А typed on a Serbian keyboard), `BG 123 ČĆ`. The normal form
is uppercase Latin letters and digits only, so that all of these compare equal. The raw
read is always kept beside it (`PlateRead.raw`).

Western Balkans formats (national registration rules; Vienna Convention
registrations of each country) are used only as *hints*: a read that fits a known
shape is more likely complete, but any foreign plate is accepted as it is. Several
shapes collide (AL and 3-digit SRB, 4-digit SRB and NMK), so a text may fit more than
one country.

    >>> normalize_plate("bg 123-čć")
    'BG123CC'
    >>> format_countries("BG123AA")
    ('AL', 'SRB', 'NMK')
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "CONFUSABLE_GROUPS",
    "PlateText",
    "canonical",
    "coerce_to_formats",
    "format_countries",
    "normalize_plate",
    "parse_plate",
]

# Cyrillic letters that look like Latin ones, as printed on Serbian, Macedonian,
# Montenegrin, Bosnian, Ukrainian, Russian and Bulgarian plates (these countries use
# only the look-alike set on plates so that foreign cameras and officers can read them).
_CYRILLIC_LOOKALIKE = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ї": "I",
    "Ё": "E",
}
# The other Cyrillic letters do not occur on those plates, but a clerk may type a name
# in Cyrillic into a SEED record: transliterate them rather than drop them.
_CYRILLIC_OTHER = {
    "Б": "B", "Г": "G", "Д": "D", "Ж": "Z", "З": "Z", "И": "I", "Й": "J", "Л": "L",
    "П": "P", "Ф": "F", "Ц": "C", "Ч": "C", "Ш": "S", "Щ": "S", "Ъ": "", "Ы": "Y",
    "Ь": "", "Э": "E", "Ю": "U", "Я": "A", "Ђ": "D", "Ћ": "C", "Љ": "L", "Њ": "N",
    "Џ": "D", "Ѓ": "G", "Ќ": "K", "Є": "E", "Ґ": "G",
}
# Letters NFKD does not take apart into base letter + accent.
_LATIN_SPECIAL = {"Đ": "D", "Ð": "D", "Ł": "L", "Ø": "O", "Æ": "AE", "Œ": "OE", "ß": "SS", "Þ": "TH", "Ħ": "H"}

_FOLD = str.maketrans({**_CYRILLIC_LOOKALIKE, **_CYRILLIC_OTHER, **_LATIN_SPECIAL})
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")

# Characters an OCR engine (or a tired officer) takes for one another on plate fonts.
CONFUSABLE_GROUPS: tuple[str, ...] = ("0ODQ", "1IL", "8B", "5S", "2Z", "6G", "4A")
_CANON = str.maketrans({c: group[0] for group in CONFUSABLE_GROUPS for c in group})
_LETTER_FOR_DIGIT = {group[0]: group[1] for group in CONFUSABLE_GROUPS}  # "0" -> "O"
_DIGIT_FOR_LETTER = {c: group[0] for group in CONFUSABLE_GROUPS for c in group[1:]}  # "B" -> "8"

# Shapes of the normal form (separators already stripped). Sources: the
# countries' registration rules: RKS `01 123-AB` (districts 01-07); AL `AB 123 CD`;
# SRB `BG 123-AA` / `BG 1234-AA`; NMK `SK 1234 AB` (older `SK 123 AB`); MNE `PG AB 123`
# (one or two letters, three or four digits); BIH `A12-E-345`, letters A E J K M O T only.
_FORMATS: dict[str, tuple[str, ...]] = {
    "RKS": ("DDDDDLL",),
    "AL": ("LLDDDLL",),
    "SRB": ("LLDDDLL", "LLDDDDLL"),
    "NMK": ("LLDDDDLL", "LLDDDLL"),
    "MNE": ("LLLDDD", "LLLLDDD", "LLLDDDD", "LLLLDDDD"),
    "BIH": ("BDDBDDD",),
}
_FORMAT_RE: dict[str, re.Pattern[str]] = {
    "RKS": re.compile(r"^0[1-7]\d{3}[A-Z]{2}$"),
    "AL": re.compile(r"^[A-Z]{2}\d{3}[A-Z]{2}$"),
    "SRB": re.compile(r"^[A-Z]{2}\d{3,4}[A-Z]{2}$"),
    "NMK": re.compile(r"^[A-Z]{2}\d{3,4}[A-Z]{2}$"),
    "MNE": re.compile(r"^[A-Z]{3,4}\d{3,4}$"),
    "BIH": re.compile(r"^[AEJKMOT]\d{2}[AEJKMOT]\d{3}$"),
}
_BIH_LETTERS = "AEJKMOT"


@dataclass(frozen=True)
class PlateText:
    """A read in normal form with the raw text and the country shapes it fits."""

    raw: str
    text: str
    countries: tuple[str, ...]  # shapes it fits, maybe several, maybe none (foreign)

    @property
    def known_format(self) -> bool:
        return bool(self.countries)


def normalize_plate(raw: str) -> str:
    """Uppercase Latin letters and digits only: look-alikes mapped, accents folded.

    Never fails: a read with nothing left (all separators) gives the empty string,
    which callers reject as "no plate".
    """
    text = unicodedata.normalize("NFKC", raw).upper().translate(_FOLD)
    # NFKD splits Č into C + caron; dropping the combining marks folds the diacritics.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text.translate(_FOLD))


def parse_plate(raw: str) -> PlateText:
    text = normalize_plate(raw)
    return PlateText(raw=raw, text=text, countries=format_countries(text))


def format_countries(text: str) -> tuple[str, ...]:
    """The Western Balkans countries whose plate shape `text` (normal form) fits."""
    return tuple(country for country, pattern in _FORMAT_RE.items() if pattern.match(text))


def canonical(text: str) -> str:
    """The normal form with every confusable group collapsed to one character.

    Two plates with the same canonical form differ only in look-alike characters.
    """
    return text.translate(_CANON)


def coerce_to_formats(text: str, max_changes: int = 2) -> list[tuple[str, str]]:
    """Readings of `text` that fit a known shape after fixing look-alike characters.

    A digit where the shape wants a letter becomes its look-alike letter and the other
    way round (`8G123AA` -> `BG123AA`), at most `max_changes` characters (more would
    force any text into some shape). Returns (corrected text, country) pairs, the
    unchanged text first when it already fits; empty when no shape is reachable.
    """
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for country, shapes in _FORMATS.items():
        for shape in shapes:
            if len(shape) != len(text):
                continue
            fixed = _coerce(text, shape)
            if fixed is None or sum(a != b for a, b in zip(fixed, text)) > max_changes:
                continue
            if _FORMAT_RE[country].match(fixed) and (fixed, country) not in seen:
                seen.add((fixed, country))
                out.append((fixed, country))
    out.sort(key=lambda pair: pair[0] != text)
    return out


def _coerce(text: str, shape: str) -> str | None:
    chars = []
    for c, want in zip(text, shape):
        if want == "D":
            c = c if c.isdigit() else _DIGIT_FOR_LETTER.get(c, "")
        elif want == "L":
            c = c if c.isalpha() else _LETTER_FOR_DIGIT.get(c, "")
        else:  # "B": a BIH letter
            c = c if c in _BIH_LETTERS else _LETTER_FOR_DIGIT.get(c, "")
            c = c if c in _BIH_LETTERS else ""
        if not c:
            return None
        chars.append(c)
    return "".join(chars)
