"""in_list: the value is an entry of a selectivity list (plates, companies, codes)."""

from __future__ import annotations

from typing import Any

from edge_agent.local_rules.fields import Facts
from edge_agent.local_rules.ops.base import COST_GROUP, Anchors, Leaf, Operator
from edge_agent.local_rules.selectivity import SelectivityList


class InList(Leaf):
    __slots__ = ("kind", "lst")

    def __init__(self, field: str, lst: SelectivityList, kind: str) -> None:
        super().__init__(field, "in_list")
        self.lst = lst
        self.kind = kind

    def test(self, facts: Facts, memo: dict) -> bool:
        return self._lookup(facts, memo) is not None

    def _lookup(self, facts: Facts, memo: dict) -> tuple | None:
        key = ("in_list", self.field, id(self.lst))
        if key in memo:
            return memo[key]
        found = None
        table = self.lst.normalized(self.kind)
        for value in facts.get(self.field, ()):
            entry = table.get(value)
            if entry is not None:
                found = (value, entry)
                break
        memo[key] = found
        return found

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        found = self._lookup(facts, memo)
        if found is not None:
            value, entry = found
            out[self.field] = {"value": value, "list": self.lst.name, "entry": entry}

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": "in_list", "list": self.lst.name}

    def anchors(self) -> Anchors:
        return COST_GROUP, [("g", self)]

    def warm(self) -> None:
        self.lst.normalized(self.kind)


def compile_in_list(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> InList:
    assert lst is not None  # the compiler requires a list for this operator
    return InList(name, lst, kind)


OPERATOR = Operator(names=("in_list",), compile=compile_in_list, kinds="text", lists="required")
