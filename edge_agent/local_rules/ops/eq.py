"""eq (one value) and in (several): the field has one of the values; numbers compare as floats."""

from __future__ import annotations

from typing import Any

from edge_agent.local_rules.fields import FIELDS, Facts
from edge_agent.local_rules.ops.base import COST_COARSE, COST_HASH, Anchors, ConditionError, Leaf, Operator, scalar
from edge_agent.local_rules.selectivity import SelectivityList


class Eq(Leaf):
    __slots__ = ("values", "written")

    def __init__(self, field: str, op: str, values: tuple, written: Any) -> None:
        super().__init__(field, op)
        self.values = values
        self.written = written

    def holds(self, value: Any) -> bool:
        return value in self.values

    # test() is written out per operator (not via holds()): it runs for every candidate
    # indicator of every truck, and the method call per value doubles its cost.
    def test(self, facts: Facts, memo: dict) -> bool:
        values = self.values
        for value in facts.get(self.field, ()):
            if value in values:
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.written}

    def anchors(self) -> Anchors:
        cost = COST_COARSE if FIELDS[self.field].coarse else COST_HASH
        return cost * len(self.values), [("h", self.field, v) for v in self.values]


def compile_eq(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> Eq:
    value = leaf.get("value")
    values = [value] if op == "eq" else value
    if op == "in" and (not isinstance(value, list) or not value):
        raise ConditionError("in needs a non-empty array of values")
    assert isinstance(values, list)
    # A small tuple: cheaper than a frozenset and as fast for the few values an indicator lists.
    return Eq(name, op, tuple(dict.fromkeys(scalar(name, kind, v) for v in values)), value)


OPERATOR = Operator(names=("eq", "in"), compile=compile_eq)
