"""Selectivity lists: named watch-lists of plates, companies, declarants, HS codes, countries.

An indicator refers to a list by name (`{"field": "consignee.name", "op": "in_list",
"list": "watch_consignees"}`), so the RAU can change a list of a million plates without
touching the indicators that use it. Entries are kept as written (for the officer's
explanation) and normalised lazily, once per value kind that some field compares them
with, because a plate list compared as names would be a different set.
"""

from __future__ import annotations

from array import array
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.local_rules.fields import NORMALIZERS
from edge_agent.local_rules.normalize import name_tokens

ListKind = Literal["plates", "companies", "declarants", "names", "hs_codes", "countries", "codes"]


class ListSpec(BaseModel):
    """A selectivity list as written in an indicator set file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ListKind
    description: str = ""
    entries: list[str] = Field(default_factory=list)


class SelectivityList:
    """A validated list with its lookup structures, built on first use per value kind."""

    __slots__ = ("_by_kind", "_tokens", "description", "entries", "kind", "name")

    def __init__(self, name: str, kind: str, entries: list[str], description: str = "") -> None:
        self.name = name
        self.kind = kind
        self.description = description
        self.entries = entries
        self._by_kind: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, tuple[tuple[str, ...], dict[str, array]]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def normalized(self, kind: str) -> dict[str, str]:
        """Normalised entry -> entry as written, for values of `kind` (see fields.NORMALIZERS)."""
        table = self._by_kind.get(kind)
        if table is None:
            norm = NORMALIZERS[kind]
            # Past the cache: a million list entries would only evict the records' names.
            norm = getattr(norm, "__wrapped__", norm)
            table = {}
            for entry in self.entries:
                key = norm(entry)
                if key:
                    # Reuse the written string when normalising changed nothing: halves
                    # the memory of lists that arrive already normalised (plates, codes).
                    table.setdefault(entry if key == entry else key, entry)
            self._by_kind[kind] = table
        return table

    def token_index(self, kind: str) -> tuple[tuple[str, ...], dict[str, array]]:
        """(normalised names, word -> positions of the names containing it) for fuzzy matching."""
        built = self._tokens.get(kind)
        if built is None:
            names = tuple(sorted(self.normalized(kind)))
            postings: dict[str, array] = {}
            for pos, name in enumerate(names):
                for token in name_tokens(name):
                    slot = postings.get(token)
                    if slot is None:
                        slot = postings[token] = array("I")
                    slot.append(pos)
            built = self._tokens[kind] = (names, postings)
        return built

    def to_json(self) -> dict:
        return {"kind": self.kind, "description": self.description, "entries": list(self.entries)}
