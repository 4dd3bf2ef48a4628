"""Condition trees: `all` / `any` / `not` over leaves `{field, op, value | list}`.

`compile_condition` validates a tree as written in an indicator set (see
docs/indicators.md) and turns it into small node objects that test `Facts`
(fields.extract). Every leaf is existential over a field's values: `items.hs_code
prefix 2402` holds when any item's code starts with 2402, and no leaf holds on a
missing value, so `exists` is implied by every leaf (index.py relies on this).

The combinators are here; each operator (eq, in, prefix, regex, lt, le, gt, ge,
between, in_list, exists, fuzzy) is a module of ops/, listed in `ops.OPERATORS`: the
compiler checks what every leaf has in common (a known field and operator, the field's
kind, a value or a list) and hands the rest to the operator. String values are compared
after the field kind's normalisation (normalize.py), on both sides; regex runs on the
normalised value.
"""

from __future__ import annotations

from typing import Any

from edge_agent.local_rules.fields import FIELDS, STRING_KINDS, Facts
from edge_agent.local_rules.ops import OPERATORS
from edge_agent.local_rules.ops.base import ConditionError, Leaf, Node
from edge_agent.local_rules.selectivity import SelectivityList

MAX_DEPTH = 16
OPS = tuple(OPERATORS)
_LEAF_KEYS = frozenset({"field", "op", "value", "list"})
_EXTRA_KEYS = frozenset().union(*(spec.extra_keys for spec in OPERATORS.values()))

__all__ = ["MAX_DEPTH", "OPS", "All", "Any_", "ConditionError", "Leaf", "Node", "Not", "compile_condition"]


class All(Node):
    __slots__ = ("children",)

    def __init__(self, children: tuple[Node, ...]) -> None:
        self.children = children

    def test(self, facts: Facts, memo: dict) -> bool:
        for child in self.children:
            if not child.test(facts, memo):
                return False
        return True

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        for child in self.children:
            child.explain(facts, memo, out)

    def to_json(self) -> dict[str, Any]:
        return {"all": [c.to_json() for c in self.children]}


class Any_(Node):
    __slots__ = ("children",)

    def __init__(self, children: tuple[Node, ...]) -> None:
        self.children = children

    def test(self, facts: Facts, memo: dict) -> bool:
        for child in self.children:
            if child.test(facts, memo):
                return True
        return False

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        for child in self.children:
            if child.test(facts, memo):
                child.explain(facts, memo, out)

    def to_json(self) -> dict[str, Any]:
        return {"any": [c.to_json() for c in self.children]}


class Not(Node):
    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child

    def test(self, facts: Facts, memo: dict) -> bool:
        return not self.child.test(facts, memo)

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        # An absence has no value to show; the officer sees the condition instead.
        out.setdefault("not", []).append(self.child.to_json())

    def to_json(self) -> dict[str, Any]:
        return {"not": self.child.to_json()}


# --------------------------------------------------------------------------- compiling


def compile_condition(tree: Any, lists: dict[str, SelectivityList], depth: int = 0) -> Node:
    """Validate one condition tree and return its node; ConditionError says what is wrong."""
    if depth > MAX_DEPTH:
        raise ConditionError(f"condition nested deeper than {MAX_DEPTH}")
    if not isinstance(tree, dict):
        raise ConditionError(f"a condition must be an object, got {type(tree).__name__}")
    for combinator in ("all", "any"):
        if combinator in tree:
            if len(tree) != 1:
                raise ConditionError(f"'{combinator}' must be the only key of its object")
            children = tree[combinator]
            if not isinstance(children, list) or not children:
                raise ConditionError(f"'{combinator}' needs a non-empty array of conditions")
            nodes = tuple(compile_condition(c, lists, depth + 1) for c in children)
            return All(nodes) if combinator == "all" else Any_(nodes)
    if "not" in tree:
        if len(tree) != 1:
            raise ConditionError("'not' must be the only key of its object")
        return Not(compile_condition(tree["not"], lists, depth + 1))
    return _compile_leaf(tree, lists)


def _compile_leaf(leaf: dict, lists: dict[str, SelectivityList]) -> Leaf:
    unknown = set(leaf) - _LEAF_KEYS - _EXTRA_KEYS
    if unknown:
        raise ConditionError(f"unknown key(s) {sorted(unknown)} in condition")
    name = leaf.get("field")
    op = leaf.get("op")
    if not isinstance(name, str) or name not in FIELDS:
        raise ConditionError(f"unknown field {name!r}")
    if not isinstance(op, str) or op not in OPERATORS:
        raise ConditionError(f"unknown operator {op!r} (one of {', '.join(OPS)})")
    spec = OPERATORS[op]
    kind = FIELDS[name].kind
    if spec.kinds == "number" and kind != "number":
        raise ConditionError(f"operator {op} needs a numeric field, {name} is {kind}")
    if spec.kinds == "text" and kind not in STRING_KINDS:
        raise ConditionError(f"operator {op} needs a text field, {name} is {kind}")
    for key in sorted(_EXTRA_KEYS - spec.extra_keys):
        if key in leaf:
            owners = ", ".join(o for o, s in OPERATORS.items() if key in s.extra_keys)
            raise ConditionError(f"'{key}' only applies to {owners}, not {op}")
    lst = None
    if spec.lists == "required" or (spec.lists == "optional" and "list" in leaf):
        if "value" in leaf:
            raise ConditionError(f"{op} takes either 'list' or 'value', not both")
        name_of_list = leaf.get("list")
        lst = lists.get(name_of_list) if isinstance(name_of_list, str) else None
        if lst is None:
            raise ConditionError(f"unknown selectivity list {leaf.get('list')!r}")
    else:
        if "list" in leaf:
            raise ConditionError(f"'list' does not apply to {op}")
        if spec.needs_value and "value" not in leaf:
            raise ConditionError(f"{op} needs a 'value'")
    return spec.compile(name, op, kind, leaf, lst)


def leaves(node: Node) -> list[Leaf]:
    """The leaves of a tree, left to right."""
    if isinstance(node, (All, Any_)):
        return [leaf for child in node.children for leaf in leaves(child)]
    if isinstance(node, Not):
        return leaves(node.child)
    return [node] if isinstance(node, Leaf) else []
