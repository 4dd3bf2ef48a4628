"""prefix: starts with one of the prefixes, or with one of a list's entries (HS chapters, headings)."""

from __future__ import annotations

from typing import Any

from edge_agent.local_rules.fields import NORMALIZERS, Facts
from edge_agent.local_rules.ops.base import (
    COST_GROUP,
    COST_PREFIX,
    Anchors,
    ConditionError,
    Leaf,
    Operator,
    strings,
)
from edge_agent.local_rules.selectivity import SelectivityList


class Prefix(Leaf):
    __slots__ = ("kind", "lst", "prefixes", "written")

    def __init__(self, field: str, prefixes: tuple[str, ...], written: Any, lst: SelectivityList | None,
                 kind: str) -> None:
        super().__init__(field, "prefix")
        self.prefixes = prefixes
        self.written = written
        self.lst = lst
        self.kind = kind

    def holds(self, value: Any) -> bool:
        if self.lst is None:
            return value.startswith(self.prefixes)
        table = self.lst.normalized(self.kind)
        return any(value[:n] in table for n in range(1, len(value) + 1))

    def test(self, facts: Facts, memo: dict) -> bool:
        if self.lst is not None:
            return super().test(facts, memo)
        prefixes = self.prefixes
        for value in facts.get(self.field, ()):
            if value.startswith(prefixes):
                return True
        return False

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        value = self.first(facts)
        out[self.field] = value if self.lst is None else {"value": value, "list": self.lst.name}

    def to_json(self) -> dict[str, Any]:
        if self.lst is not None:
            return {"field": self.field, "op": "prefix", "list": self.lst.name}
        return {"field": self.field, "op": "prefix", "value": self.written}

    def anchors(self) -> Anchors:
        if self.lst is not None:
            return COST_GROUP, [("g", self)]
        # One- or two-character prefixes (HS sections) open for many trucks.
        cost = sum(COST_PREFIX * (10.0 if len(p) <= 2 else 1.0) for p in self.prefixes)
        return cost, [("p", self.field, p) for p in self.prefixes]

    def warm(self) -> None:
        if self.lst is not None:
            self.lst.normalized(self.kind)


def compile_prefix(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> Prefix:
    if lst is not None:
        return Prefix(name, (), None, lst, kind)
    value = leaf.get("value")
    normalized = tuple(NORMALIZERS[kind](p) for p in strings(op, value))
    if not all(normalized):
        raise ConditionError(f"prefix {value!r} is empty after normalisation")
    return Prefix(name, normalized, value, None, kind)


OPERATOR = Operator(names=("prefix",), compile=compile_prefix, kinds="text", lists="optional")
