"""Plate grammars: which characters each country's plates carry, position by position.

An OCR engine reading a plate confuses look-alikes (O/0, I/1, B/8, S/5, Z/2, D/0, G/6);
the country's format says which of the two a position holds. A grammar takes the
reader's probabilities for each character and returns the readings that fit a known
format, surest first, each with the countries it fits; a read that fits none still
comes through as it was read (`Reading.countries == ()`), ranked below the fits by
`UNKNOWN_FORMAT_WEIGHT` times its own probability.

Formats are written as printed, one symbol per character of the normal form, with the
separators (space, `-`) as on the plate:

    L       a letter of the country's plate alphabet     D   a digit
    X       a letter or a digit                          [..] one of the listed characters
    ' ' -   separators, as printed (the normal form drops them)

    >>> GRAMMAR.resolve_text("8G 123-AA")[0]
    Reading(text='BG123AA', countries=('AL', 'SRB', 'NMK', ...), ...)

Sources: the countries' registration regulations as summarised in the UNECE Vienna
Convention registrations and national registration rules; each entry's comment names
what it covers. Formats are the current issue plus older ones still common on trucks;
vanity and diplomatic plates are left out (they come through as unknown formats).
US states: the serial formats of the states' standard passenger plates. In the US, O
and 0 are one character in plate records (the letter O is not issued in most states'
serials, and the openalpr reference set spells every O as 0), so US readings spell it 0.

The table is data: a site or a test extends it with `Grammar(TABLE + (Country(...),))`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge_agent.plates.normal_form import CONFUSABLE_GROUPS, normalize_plate

__all__ = [
    "ALPHABET",
    "GRAMMAR",
    "HOME_WEIGHT",
    "TABLE",
    "UNKNOWN_FORMAT_WEIGHT",
    "Country",
    "Grammar",
    "PlateFormat",
    "Reading",
]

# The plate alphabet, in the order readers give their probabilities.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"
# Letters of Cyrillic plates that have a Latin look-alike (the only ones issued).
_CYRILLIC_LATIN = "ABEHIKMOPCTXY"
# A read that fits no format keeps this share of its probability when ranked against
# readings that fit one. With `resolve_text`'s even odds of 1 in 4 per look-alike swap,
# a fit needing one or two swaps outranks the raw read, three do not (as
# normal_form.coerce_to_formats, which allows two); with a reader's own probabilities,
# a swap the reader gave under a 1-in-20 chance does not.
UNKNOWN_FORMAT_WEIGHT = 0.05
_SEPARATORS = " -"
# How much more a reading fitting a home country (`Grammar(home=...)`) counts.
HOME_WEIGHT = 2.0


@dataclass(frozen=True)
class Country:
    """A country's plates: its formats and the letters it issues."""

    code: str  # the international vehicle registration code (Vienna Convention)
    formats: tuple[str, ...]
    letters: str = _LETTERS
    # Characters written differently in this country's records, e.g. US {"O": "0"}.
    spelling: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PlateFormat:
    country: str
    pattern: str  # as printed
    positions: tuple[frozenset[str], ...]  # the characters allowed at each position
    spelling: tuple[tuple[str, str], ...] = ()  # the country's: a character counted as another

    def fits(self, text: str) -> bool:
        return len(text) == len(self.positions) and all(c in allowed for c, allowed in zip(text, self.positions))


@dataclass(frozen=True)
class Reading:
    """One way to read a plate: its normal form and the countries whose format it fits."""

    text: str
    countries: tuple[str, ...]  # () when it fits no known format
    probability: float  # of these characters, as the reader saw them, 0..1
    score: float  # probability, weighted down when no format fits: what readings rank by
    changed: int  # characters changed from the reader's first choice


class Grammar:
    """Formats of many countries, ready to check or resolve reads against."""

    def __init__(self, countries: Iterable[Country], home: Iterable[str] = ()) -> None:
        """`home`: the codes of the countries most plates at the site come from; a
        reading fitting one of them counts `HOME_WEIGHT` times (a crossing knows its
        neighbours; without it, a plate that fits two countries' shapes is a toss-up)."""
        self.countries = tuple(countries)
        self.home = frozenset(home)
        self.codes = frozenset(c.code for c in self.countries)
        self.formats: list[PlateFormat] = [compile_format(c, p) for c in self.countries for p in c.formats]
        self._by_length: dict[int, list[PlateFormat]] = {}
        for fmt in self.formats:
            self._by_length.setdefault(len(fmt.positions), []).append(fmt)

    def fitting(self, text: str) -> tuple[str, ...]:
        """The countries whose format `text` (normal form) fits, in the table's order."""
        return tuple(dict.fromkeys(f.country for f in self._by_length.get(len(text), ()) if f.fits(text)))

    def resolve(self, glyphs: Sequence[Sequence[float]], *, limit: int = 6) -> list[Reading]:
        """The likeliest readings of a plate from the reader's probabilities.

        `glyphs`: one row per character, its probabilities in ALPHABET order. For each
        format of that length each position takes its likeliest allowed character; the
        reading's probability is the product of the chosen characters' probabilities.
        The reader's own first choice is always among the results (a plate of a format
        not in the table is still a plate).
        """
        ranked = [sorted(zip(row, ALPHABET), reverse=True) for row in glyphs]
        raw = "".join(r[0][1] for r in ranked)
        raw_p = math.prod(r[0][0] for r in ranked)
        spelled: dict[tuple[tuple[str, str], ...], list[list[tuple[float, str]]]] = {(): ranked}
        best: dict[str, tuple[float, list[str]]] = {}
        for fmt in self._by_length.get(len(glyphs), ()):
            options_by_position = spelled.get(fmt.spelling)
            if options_by_position is None:
                options_by_position = spelled[fmt.spelling] = [_respell(row, dict(fmt.spelling)) for row in glyphs]
            chars = []
            p = 1.0
            for options, allowed in zip(options_by_position, fmt.positions):
                prob, char = next(((q, c) for q, c in options if c in allowed), (0.0, ""))
                p *= prob
                chars.append(char)
                if p <= 0:
                    break
            if p <= 0:
                continue
            text = "".join(chars)
            found = best.get(text)
            if found is None:
                best[text] = (p, [fmt.country])
            else:
                best[text] = (max(p, found[0]), [*found[1], fmt.country])
        readings = [Reading(text=text, countries=tuple(dict.fromkeys(countries)), probability=p,
                            score=p * (HOME_WEIGHT if self.home.intersection(countries) else 1.0),
                            changed=sum(a != b for a, b in zip(text, raw)))
                    for text, (p, countries) in best.items()]
        if raw not in best:
            readings.append(Reading(text=raw, countries=(), probability=raw_p, score=raw_p * UNKNOWN_FORMAT_WEIGHT,
                                    changed=0))
        readings.sort(key=lambda r: (-r.score, r.changed))
        return readings[:limit]

    def resolve_text(self, raw: str, *, confusion: float = 0.2, limit: int = 6) -> list[Reading]:
        """Readings of a text with no probabilities (a camera's read, an officer's entry):
        each character is taken as read with 1 - `confusion`, each of its look-alikes with
        `confusion` (scores, not a distribution: a look-alike group's size must not make
        one swap dearer than another)."""
        text = normalize_plate(raw)
        return self.resolve([_text_probabilities(c, confusion) for c in text], limit=limit) if text else []


def compile_format(country: Country, pattern: str) -> PlateFormat:
    positions: list[frozenset[str]] = []
    for token in re.findall(r"\[[^\]]+\]|.", pattern):
        if token in _SEPARATORS:
            continue
        if token == "L":
            positions.append(frozenset(country.letters))
        elif token == "D":
            positions.append(frozenset(_DIGITS))
        elif token == "X":
            positions.append(frozenset(country.letters + _DIGITS))
        elif token.startswith("["):
            positions.append(frozenset(_expand(token[1:-1])))
        elif token in ALPHABET:
            positions.append(frozenset(token))
        else:
            raise ValueError(f"{country.code} format {pattern!r}: unknown symbol {token!r}")
    spelled = dict(country.spelling)
    positions = [frozenset(spelled.get(c, c) for c in allowed) for allowed in positions]
    return PlateFormat(country=country.code, pattern=pattern, positions=tuple(positions), spelling=country.spelling)


def _expand(spec: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _respell(row: Sequence[float], spelling: dict[str, str]) -> list[tuple[float, str]]:
    """A glyph's probabilities with each respelled character counted as its spelling.

    The larger of the two, not their sum: summing would make a country that writes O
    as 0 the likeliest reading of every O/0 the reader hesitated on.
    """
    merged = dict(zip(ALPHABET, row))
    for old, new in spelling.items():
        merged[new] = max(merged[new], merged.pop(old))
    return sorted(((p, c) for c, p in merged.items()), reverse=True)


_GROUP_OF = {c: group for group in CONFUSABLE_GROUPS for c in group}


def _text_probabilities(char: str, confusion: float) -> list[float]:
    partners = [c for c in _GROUP_OF.get(char, char) if c != char]
    row = [0.0] * len(ALPHABET)
    row[ALPHABET.index(char)] = 1.0 - (confusion if partners else 0.0)
    for c in partners:
        row[ALPHABET.index(c)] = confusion
    return row


# --------------------------------------------------------------------------- the table

_US = (("O", "0"),)  # O is written 0 in US plate records

TABLE: tuple[Country, ...] = (
    # Western Balkans (the same shapes as normal_form.format_countries).
    Country("RKS", ("0[1-7] DDD-LL",)),
    Country("AL", ("LL DDD LL",)),
    Country("SRB", ("LL DDD-LL", "LL DDDD-LL")),
    Country("NMK", ("LL DDDD LL", "LL DDD LL")),
    Country("MNE", ("LL L DDD", "LL LL DDD", "LL L DDDD", "LL LL DDDD")),
    Country("BIH", ("[AEJKMOT]DD-[AEJKMOT]-DDD",)),
    # Neighbours and the transit routes' countries.
    Country("HR", ("LL DDD-L", "LL DDD-LL", "LL DDDD-L", "LL DDDD-LL")),
    Country("SLO", ("LL L0-DDD", "LL DD-DDD", "LL LL-DDD", "LL DDD-LL")),
    Country("BG", ("L DDDD LL", "LL DDDD LL"), letters=_CYRILLIC_LATIN),
    Country("RO", ("L DD LLL", "L DDD LLL", "LL DD LLL")),
    Country("GR", ("LLL-DDDD",), letters="ABEHIKMNOPTXYZ"),
    Country("TR", ("DD L DDDD", "DD L DDDDD", "DD LL DDD", "DD LL DDDD", "DD LLL DD", "DD LLL DDD")),
    Country("H", ("LLL-DDD", "LL LL-DDD")),
    Country("UA", ("LL DDDD LL",), letters=_CYRILLIC_LATIN),
    Country("MD", ("LLL DDD", "L LL DDD", "LL LL DDD")),
    Country("BY", ("DDDD LL-D",), letters=_CYRILLIC_LATIN),
    Country("RUS", ("L DDD LL DD", "L DDD LL DDD"), letters=_CYRILLIC_LATIN),
    Country("GE", ("LL-DDD-LL",)),
    Country("SK", ("LL-DDDLL", "LL DDD LL")),
    Country("CZ", ("DLD DDDD", "DLL DDDD")),
    Country("PL", ("LL DDDDD", "LL DDDDL", "LL DDDLL", "LL DLDDD", "LL DLLDD", "LLL DDDD", "LLL DDDL", "LLL DDLL",
                   "LLL DLDD", "LLL DLLD")),
    Country("D", tuple(f"{'L' * a} {'L' * b} {'D' * c}" for a in (1, 2, 3) for b in (1, 2) for c in (1, 2, 3, 4))),
    Country("A", ("L DDDDD L", "L DDDD LL", "LL DDDD L", "LL DDD LL", "LL DDDDD L", "L DDD LLL")),
    Country("I", ("LL DDD LL",), letters=_LETTERS.translate(str.maketrans("", "", "IOQU"))),
    Country("F", ("LL-DDD-LL",), letters=_LETTERS.translate(str.maketrans("", "", "IOU"))),
    Country("E", ("DDDD LLL",), letters="BCDFGHJKLMNPRSTVWXYZ"),
    Country("NL", ("LL-DD-DD", "DD-DD-LL", "DD-LL-DD", "LL-DD-LL", "LL-LL-DD", "DD-LL-LL", "DD-LLL-D", "D-LLL-DD",
                   "LL-DDD-L", "L-DDD-LL", "LLL-DD-L", "D-LL-DDD")),
    Country("B", ("D-LLL-DDD",)),
    Country("LT", ("LLL DDD",)),
    Country("LV", ("LL-DDDD", "LL-DDD")),
    Country("EST", ("DDD LLL",)),
    Country("DK", ("LL DD DDD",)),
    Country("S", ("LLL DDD", "LLL DDL")),
    Country("FIN", ("LLL-DDD", "LL-DDD")),
    Country("N", ("LL DDDDD",)),
    Country("P", ("LL-DD-LL", "DD-LL-DD", "DD-DD-LL", "LL-DD-DD")),
    Country("CH", tuple(f"LL {'D' * n}" for n in range(1, 7))),
    Country("L", ("LL DDDD", "DDDDDD")),
    Country("GB", ("LL DD LLL",)),
    # US states' standard passenger serials (the reference set of real photos is US).
    Country("USA", (
        "DLLLDDD",  # California 1ABC234; Maryland-style 1AB2345 below
        "DLLDDDD",
        "LLLDDDD",  # Arizona, Texas, New York, Pennsylvania, Ohio, Georgia, North Carolina, Virginia ...
        "LLLDDD",  # older issues of many states
        "DDDLLL",  # Minnesota, Oregon, Kansas, Colorado ...
        "LLDLDL",  # Missouri AB1C2D
        "LLLLDD", "LLLDLL",  # Florida
        "LDDLLL",  # New Jersey A12BCD
        "DLLLDD", "DLLDDD",  # Massachusetts
        "LDDDDDD", "LLDDDDD",  # Illinois
        "DDLDDD",  # Nevada
        "DDDDDDD", "DDDDDD",  # numeric series (Delaware, Rhode Island, commercial)
    ), spelling=_US),
)

GRAMMAR = Grammar(TABLE)
