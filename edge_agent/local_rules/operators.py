"""Condition trees: `all` / `any` / `not` over leaves `{field, op, value | list}`.

`compile_condition` validates a tree as written in an indicator set (see
docs/indicators.md) and turns it into small node objects that test `Facts`
(fields.extract). Every leaf is existential over a field's values: `items.hs_code
prefix 2402` holds when any item's code starts with 2402, and no leaf holds on a
missing value, so `exists` is implied by every leaf (index.py relies on this).

Operators: eq, in, prefix, regex, lt, le, gt, ge, between (inclusive), in_list, exists,
fuzzy. String values are compared after the field kind's normalisation (normalize.py),
on both sides; regex runs on the normalised value.

Fuzzy name match: a value matches a name when, after normalisation, the two share at
least one word and rapidfuzz's token_sort_ratio (0..100, Indel similarity of the
words in sorted order) reaches the threshold (default 90). The shared word is part of
the definition: it keeps a million-name list searchable in microseconds through a word
index, and real variants (word order, punctuation, legal forms, script, a typo in one
word) keep a word in common.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rapidfuzz import fuzz, process

from edge_agent.local_rules.fields import FIELDS, NORMALIZERS, STRING_KINDS, Facts
from edge_agent.local_rules.normalize import name_tokens
from edge_agent.local_rules.selectivity import SelectivityList

DEFAULT_FUZZY_THRESHOLD = 90.0
MAX_DEPTH = 16
OPS = ("eq", "in", "prefix", "regex", "lt", "le", "gt", "ge", "between", "in_list", "exists", "fuzzy")
_NUMERIC_OPS = ("lt", "le", "gt", "ge", "between")
_STRING_OPS = ("prefix", "regex", "in_list", "fuzzy")


class ConditionError(ValueError):
    """A condition that cannot be compiled; the loader adds the indicator id."""


class Node:
    __slots__ = ()

    def test(self, facts: Facts, memo: dict) -> bool:
        raise NotImplementedError

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        """Record in `out` the values that made this (true) node true."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


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


class Leaf(Node):
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


class Eq(Leaf):
    """eq (one value) and in (several); numbers compare as floats."""

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


class Prefix(Leaf):
    """Starts with one of the prefixes, or with one of a list's entries (HS chapters, headings)."""

    __slots__ = ("kind", "lst", "prefixes", "written")

    def __init__(self, field: str, prefixes: tuple[str, ...], written: Any, lst: SelectivityList | None, kind: str):
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


class Compare(Leaf):
    """lt, le, gt, ge against one bound; between [low, high] inclusive."""

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
        value, entry = self._lookup(facts, memo)
        out[self.field] = {"value": value, "list": self.lst.name, "entry": entry}

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": "in_list", "list": self.lst.name}


class Exists(Leaf):
    __slots__ = ()

    def holds(self, value: Any) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": "exists"}


class Fuzzy(Leaf):
    """Fuzzy name match against literal names or a list (definition in the module docstring)."""

    __slots__ = ("kind", "lst", "targets", "threshold", "written")

    def __init__(self, field: str, targets: tuple[str, ...], written: Any, lst: SelectivityList | None,
                 kind: str, threshold: float) -> None:
        super().__init__(field, "fuzzy")
        self.targets = targets
        self.written = written
        self.lst = lst
        self.kind = kind
        self.threshold = threshold

    def test(self, facts: Facts, memo: dict) -> bool:
        best = self._best(facts, memo)
        return best is not None and best[0] >= self.threshold

    def _best(self, facts: Facts, memo: dict) -> tuple[float, str, str] | None:
        """(score, name, value) of the best-scoring candidate over all values, or None."""
        key = ("fuzzy", self.field, id(self.lst) if self.lst is not None else id(self))
        if key in memo:
            return memo[key]
        best = None
        for value in facts.get(self.field, ()):
            if self.lst is not None:
                candidates = _list_candidates(self.lst, self.kind, value)
            else:
                tokens = name_tokens(value)
                candidates = [t for t in self.targets if not tokens.isdisjoint(name_tokens(t))]
            found = best_name(value, candidates)
            if found is not None and (best is None or (-found[0], found[1]) < (-best[0], best[1])):
                best = (found[0], found[1], value)
        memo[key] = best
        return best

    def explain(self, facts: Facts, memo: dict, out: dict[str, Any]) -> None:
        score, name, value = self._best(facts, memo)
        entry = self.lst.normalized(self.kind)[name] if self.lst is not None else name
        out[self.field] = {"value": value, "entry": entry, "score": round(score, 1)}
        if self.lst is not None:
            out[self.field]["list"] = self.lst.name

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "op": "fuzzy", "threshold": self.threshold}
        if self.lst is not None:
            out["list"] = self.lst.name
        else:
            out["value"] = self.written
        return out


def fuzzy_score(a: str, b: str) -> float:
    return fuzz.token_sort_ratio(a, b)


def best_name(value: str, candidates: list[str]) -> tuple[float, str] | None:
    """Highest score, ties to the alphabetically first name, over candidates sharing a word."""
    if not candidates:
        return None
    scored = process.extract(value, candidates, scorer=fuzz.token_sort_ratio, processor=None, limit=None)
    top = max(score for _, score, _ in scored)
    return top, min(name for name, score, _ in scored if score == top)


def _list_candidates(lst: SelectivityList, kind: str, value: str) -> list[str]:
    names, postings = lst.token_index(kind)
    positions: set[int] = set()
    for token in name_tokens(value):
        hit = postings.get(token)
        if hit is not None:
            positions.update(hit)
    return [names[p] for p in positions]


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
    unknown = set(leaf) - {"field", "op", "value", "list", "threshold"}
    if unknown:
        raise ConditionError(f"unknown key(s) {sorted(unknown)} in condition")
    name = leaf.get("field")
    op = leaf.get("op")
    if not isinstance(name, str) or name not in FIELDS:
        raise ConditionError(f"unknown field {name!r}")
    if op not in OPS:
        raise ConditionError(f"unknown operator {op!r} (one of {', '.join(OPS)})")
    kind = FIELDS[name].kind
    if op in _NUMERIC_OPS and kind != "number":
        raise ConditionError(f"operator {op} needs a numeric field, {name} is {kind}")
    if op in _STRING_OPS and kind not in STRING_KINDS:
        raise ConditionError(f"operator {op} needs a text field, {name} is {kind}")
    if "threshold" in leaf and op != "fuzzy":
        raise ConditionError(f"'threshold' only applies to fuzzy, not {op}")
    uses_list = op in ("in_list", "prefix", "fuzzy") and "list" in leaf
    if op == "in_list" or uses_list:
        if "value" in leaf:
            raise ConditionError(f"{op} takes either 'list' or 'value', not both")
        lst = lists.get(leaf.get("list"))  # type: ignore[arg-type]
        if lst is None:
            raise ConditionError(f"unknown selectivity list {leaf.get('list')!r}")
    else:
        lst = None
        if "list" in leaf:
            raise ConditionError(f"'list' does not apply to {op}")
        if op != "exists" and "value" not in leaf:
            raise ConditionError(f"{op} needs a 'value'")
    value = leaf.get("value")

    if op == "exists":
        if "value" in leaf:
            raise ConditionError("exists takes no value (use not/exists for absence)")
        return Exists(name, "exists")
    if op == "in_list":
        return InList(name, lst, kind)  # type: ignore[arg-type]
    if op in ("eq", "in"):
        values = [value] if op == "eq" else value
        if op == "in" and (not isinstance(value, list) or not value):
            raise ConditionError("in needs a non-empty array of values")
        # A small tuple: cheaper than a frozenset and as fast for the few values an indicator lists.
        return Eq(name, op, tuple(dict.fromkeys(_scalar(name, kind, v) for v in values)), value)
    if op == "prefix":
        if lst is not None:
            return Prefix(name, (), None, lst, kind)
        prefixes = _strings(op, value)
        normalized = tuple(NORMALIZERS[kind](p) for p in prefixes)
        if not all(normalized):
            raise ConditionError(f"prefix {value!r} is empty after normalisation")
        return Prefix(name, normalized, value, None, kind)
    if op == "regex":
        if not isinstance(value, str):
            raise ConditionError("regex needs a string pattern")
        try:
            return Regex(name, re.compile(value))
        except re.error as err:
            raise ConditionError(f"bad regex {value!r}: {err}") from err
    if op == "fuzzy":
        threshold = leaf.get("threshold", DEFAULT_FUZZY_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 100:
            raise ConditionError(f"fuzzy threshold must be a number in (0, 100], got {threshold!r}")
        if lst is not None:
            return Fuzzy(name, (), None, lst, kind, float(threshold))
        targets = tuple(NORMALIZERS[kind](t) for t in _strings(op, value))
        if not all(targets):
            raise ConditionError(f"fuzzy value {value!r} is empty after normalisation")
        return Fuzzy(name, targets, value, None, kind, float(threshold))
    # numeric comparisons
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError("between needs [low, high]")
        low, high = (_number(op, v) for v in value)
        if low > high:
            raise ConditionError(f"between low {low} is above high {high}")
        return Compare(name, op, low, high, False, False)
    bound = _number(op, value)
    if op in ("gt", "ge"):
        return Compare(name, op, bound, math.inf, op == "gt", False)
    return Compare(name, op, -math.inf, bound, False, op == "lt")


def _scalar(name: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConditionError(f"{name} is true/false, got {value!r}")
        return value
    if kind == "number":
        return _number("eq", value)
    if not isinstance(value, str):
        raise ConditionError(f"{name} compares with strings, got {value!r}")
    normalized = NORMALIZERS[kind](value)
    if not normalized:
        raise ConditionError(f"value {value!r} is empty after normalisation")
    # Keep one string when normalising changed nothing (most plates and codes): 100,000
    # indicators are held in memory.
    return value if normalized == value else normalized


def _number(op: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConditionError(f"{op} needs a finite number, got {value!r}")
    return float(value)


def _strings(op: str, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConditionError(f"{op} needs a string or a non-empty array of strings")
    return values
