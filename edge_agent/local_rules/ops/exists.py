"""exists: the field has a value (use not/exists for absence)."""

from __future__ import annotations

from typing import Any

from edge_agent.local_rules.ops.base import ConditionError, Leaf, Operator
from edge_agent.local_rules.selectivity import SelectivityList


class Exists(Leaf):
    __slots__ = ()

    def holds(self, value: Any) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": "exists"}

    # anchors: the base's ("e", field), which is exactly this operator's meaning.


def compile_exists(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> Exists:
    if "value" in leaf:
        raise ConditionError("exists takes no value (use not/exists for absence)")
    return Exists(name, "exists")


OPERATOR = Operator(names=("exists",), compile=compile_exists, needs_value=False)
