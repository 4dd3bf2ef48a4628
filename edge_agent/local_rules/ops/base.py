"""What every rule operator is built from: the node protocol, the leaf base, the spec.

A condition compiles into a tree of `Node`s (the combinators live in operators.py); a
leaf is one operator applied to one field. Each operator module (ops/<name>.py) holds
its leaf class and an `Operator` spec that says which field kinds it takes, whether it
takes a selectivity list, and how to compile its arguments. The leaf carries its own
index hooks: `anchors()` (the keys the index may file it under, and what they cost),
`warm()` (work to do when a set is built, not on the first truck) and `opens_group()`
(whether a truck gets past a shared list lookup).

Anchor keys are the index's vocabulary (index.py), one tag per kind of table:
("h", field, value) hash, ("p", field, prefix) prefix, ("t", field, word) fuzzy word,
("g", leaf) a (field, list) group, ("lo", field, bound) / ("hi", field, bound) sorted
bounds, ("e", field) any value present.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.local_rules.fields import NORMALIZERS, Facts
from edge_agent.local_rules.selectivity import SelectivityList

Anchor = tuple
Anchors = tuple[float, list[Anchor]]

# Rough cost of one key of each kind: how often it is expected to let a truck through.
COST_HASH = 1.0
COST_COARSE = 40.0
COST_PREFIX = 2.0
COST_GROUP = 3.0
COST_TOKEN = 2.0
COST_RANGE = 30.0
COST_EXISTS = 100.0


class ConditionError(ValueError):
    """A condition that cannot be compiled; the loader adds the indicator id."""


class Node:
    """A compiled condition: tested against a truck's facts, explained, written back."""

    __slots__ = ()

    def test(self, facts: Facts, memo: dict) -> bool:
        raise NotImplementedError

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        """Record in `out` the values that made this (true) node true."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class Leaf(Node):
    """One operator on one field. Every leaf is existential over the field's values and
    false on a missing value (index.py relies on it)."""

    __slots__ = ("field", "op")

    def __init__(self, field: str, op: str) -> None:
        self.field = field
        self.op = op

    def first(self, facts: Facts) -> Any:
        for value in facts.get(self.field, ()):
            if self.holds(value):
                return value
        return None

    def holds(self, value: Any) -> bool:
        raise NotImplementedError

    def test(self, facts: Facts, memo: dict) -> bool:
        for value in facts.get(self.field, ()):
            if self.holds(value):
                return True
        return False

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        out[self.field] = self.first(facts)

    # ------------------------------------------------------------------ index hooks

    def anchors(self) -> Anchors | None:
        """(cost, keys) such that the leaf can only hold when one key is in the facts;
        None when only evaluating it can tell."""
        return COST_EXISTS, [("e", self.field)]

    def warm(self) -> None:
        """Prepare what the first truck would otherwise pay for (a list's tables)."""

    def opens_group(self, facts: Facts, memo: dict) -> bool:
        """For a ("g", leaf) anchor: may the indicators filed under it hold for this truck?"""
        return self.test(facts, memo)


Kinds = Literal["any", "number", "text"]
ListUse = Literal["never", "optional", "required"]
# (field name, operator name, the field's kind, the leaf as written, its list or None) -> leaf
Compile = Callable[[str, str, str, dict[str, Any], SelectivityList | None], Leaf]


@dataclass(frozen=True)
class Operator:
    """One operator as the compiler sees it (ops/__init__.py lists them)."""

    names: tuple[str, ...]
    compile: Compile
    kinds: Kinds = "any"  # which fields it applies to: any, numbers only, text only
    lists: ListUse = "never"  # whether it takes a selectivity list instead of a value
    needs_value: bool = True  # False: it tests the field alone (exists)
    extra_keys: frozenset[str] = field(default_factory=frozenset)  # e.g. fuzzy's threshold


# --------------------------------------------------------------------------- arguments


def scalar(name: str, kind: str, value: Any) -> Any:
    """One written value as the facts hold it (normalised by the field's kind)."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConditionError(f"{name} is true/false, got {value!r}")
        return value
    if kind == "number":
        return number("eq", value)
    if not isinstance(value, str):
        raise ConditionError(f"{name} compares with strings, got {value!r}")
    normalized = NORMALIZERS[kind](value)
    if not normalized:
        raise ConditionError(f"value {value!r} is empty after normalisation")
    # Keep one string when normalising changed nothing (most plates and codes): 100,000
    # indicators are held in memory.
    return value if normalized == value else normalized


def number(op: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConditionError(f"{op} needs a finite number, got {value!r}")
    return float(value)


def strings(op: str, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConditionError(f"{op} needs a string or a non-empty array of strings")
    return values
