"""regex: the normalised value matches a regular expression (Python `re`, searched)."""

from __future__ import annotations

import re
from typing import Any

from edge_agent.local_rules.fields import Facts
from edge_agent.local_rules.ops.base import ConditionError, Leaf, Operator
from edge_agent.local_rules.selectivity import SelectivityList


class Regex(Leaf):
    __slots__ = ("pattern",)

    def __init__(self, field: str, pattern: re.Pattern) -> None:
        super().__init__(field, "regex")
        self.pattern = pattern

    def holds(self, value: Any) -> bool:
        return self.pattern.search(value) is not None

    def test(self, facts: Facts, memo: dict) -> bool:
        search = self.pattern.search
        for value in facts.get(self.field, ()):
            if search(value) is not None:
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": "regex", "value": self.pattern.pattern}

    # anchors: the base's ("e", field): a pattern says nothing the index could look up.


def compile_regex(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> Regex:
    value = leaf.get("value")
    if not isinstance(value, str):
        raise ConditionError("regex needs a string pattern")
    try:
        return Regex(name, re.compile(value))
    except re.error as err:
        raise ConditionError(f"bad regex {value!r}: {err}") from err


OPERATOR = Operator(names=("regex",), compile=compile_regex, kinds="text")
