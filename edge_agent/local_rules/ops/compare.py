"""lt, le, gt, ge against one bound; between [low, high] inclusive (numeric fields)."""

from __future__ import annotations

import math
from typing import Any

from edge_agent.local_rules.fields import Facts
from edge_agent.local_rules.ops.base import COST_RANGE, Anchors, ConditionError, Leaf, Operator, number
from edge_agent.local_rules.selectivity import SelectivityList


class Compare(Leaf):
    __slots__ = ("high", "high_open", "low", "low_open")

    def __init__(self, field: str, op: str, low: float, high: float, low_open: bool, high_open: bool) -> None:
        super().__init__(field, op)
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def holds(self, value: Any) -> bool:
        if value < self.low or (self.low_open and value == self.low):
            return False
        return not (value > self.high or self.high_open and value == self.high)

    def test(self, facts: Facts, memo: dict) -> bool:
        for value in facts.get(self.field, ()):
            if self.holds(value):
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        if self.op == "between":
            value: Any = [self.low, self.high]
        else:
            value = self.high if self.op in ("lt", "le") else self.low
        return {"field": self.field, "op": self.op, "value": value}

    def anchors(self) -> Anchors:
        if self.low != float("-inf"):
            return COST_RANGE, [("lo", self.field, self.low)]
        return COST_RANGE, [("hi", self.field, self.high)]


def compile_compare(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> Compare:
    value = leaf.get("value")
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError("between needs [low, high]")
        low, high = (number(op, v) for v in value)
        if low > high:
            raise ConditionError(f"between low {low} is above high {high}")
        return Compare(name, op, low, high, False, False)
    bound = number(op, value)
    if op in ("gt", "ge"):
        return Compare(name, op, bound, math.inf, op == "gt", False)
    return Compare(name, op, -math.inf, bound, False, op == "lt")


OPERATOR = Operator(names=("lt", "le", "gt", "ge", "between"), compile=compile_compare, kinds="number")
