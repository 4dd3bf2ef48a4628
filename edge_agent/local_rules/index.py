"""The indexed engine: find the few indicators a truck can match without trying them all.

For every indicator, `anchors` picks a set of keys such that the indicator can only be
true when at least one key is present in the truck's facts (a necessary condition,
never a sufficient one): for `all`, the most selective child; for `any`, every child;
`not` gives none. Keys live in:

- hash tables for eq / in (field -> value -> indicators) and for the words of fuzzy
  literals (a fuzzy match needs a shared word, operators.py);
- per-field prefix tables for `prefix` (a value of n characters has n prefixes to look
  up, so HS headings cost ten lookups whatever the number of indicators);
- groups for list operators (in_list, prefix and fuzzy against a list): one lookup per
  (field, list) pair, shared by every indicator that uses it;
- sorted bounds for numeric comparisons (bisect gives the indicators whose bound the
  value passes);
- `exists` per field for regex and exists, the last resort.

Indicators with no anchor (a top-level `not`) are residual and always evaluated. The
candidates are then evaluated in full, so the index can only make things faster, never
change a result; tests/local_rules compare it with a naive evaluator.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from edge_agent.local_rules.fields import FIELDS, Facts
from edge_agent.local_rules.normalize import name_tokens
from edge_agent.local_rules.operators import (
    All,
    Any_,
    Compare,
    Eq,
    Exists,
    Fuzzy,
    InList,
    Node,
    Not,
    Prefix,
    Regex,
)

# Rough cost of one key of each kind: how often it is expected to let a truck through.
_COST_HASH = 1.0
_COST_COARSE = 40.0
_COST_PREFIX = 2.0
_COST_GROUP = 3.0
_COST_TOKEN = 2.0
_COST_RANGE = 30.0
_COST_EXISTS = 100.0

Anchor = tuple  # ("h", field, value) | ("p", field, prefix) | ("t", field, word) | ("g", leaf) | ...


class Index:
    """Keys -> indicator positions, built once per indicator set."""

    def __init__(self, indicators: Iterable) -> None:
        self.indicators = tuple(i for i in indicators if i.status == "active")
        self.hash: dict[str, dict] = {}
        self.prefix: dict[str, dict[str, list[int]]] = {}
        self.tokens: dict[str, dict[str, list[int]]] = {}
        self.groups: dict[tuple, tuple[Node, list[int]]] = {}
        self.residual: list[int] = []
        self.exists: dict[str, list[int]] = {}
        lower: dict[str, list[tuple[float, int]]] = {}
        upper: dict[str, list[tuple[float, int]]] = {}
        for pos, indicator in enumerate(self.indicators):
            found = choose(indicator.node, indicator.procedures)
            if found is None:
                self.residual.append(pos)
                continue
            for anchor in found[1]:
                tag = anchor[0]
                if tag == "h":
                    self.hash.setdefault(anchor[1], {}).setdefault(anchor[2], []).append(pos)
                elif tag == "p":
                    self.prefix.setdefault(anchor[1], {}).setdefault(anchor[2], []).append(pos)
                elif tag == "t":
                    self.tokens.setdefault(anchor[1], {}).setdefault(anchor[2], []).append(pos)
                elif tag == "g":
                    leaf = anchor[1]
                    key = (type(leaf).__name__, leaf.field, id(leaf.lst), leaf.kind)
                    self.groups.setdefault(key, (leaf, []))[1].append(pos)
                elif tag == "lo":
                    lower.setdefault(anchor[1], []).append((anchor[2], pos))
                elif tag == "hi":
                    upper.setdefault(anchor[1], []).append((anchor[2], pos))
                else:
                    self.exists.setdefault(anchor[1], []).append(pos)
        self.lower = {f: _sorted(pairs) for f, pairs in lower.items()}
        self.upper = {f: _sorted(pairs) for f, pairs in upper.items()}
        # Normalise the lists now, not on the first truck after a new set arrives.
        for indicator in self.indicators:
            _warm(indicator.node)

    def candidates(self, facts: Facts, memo: dict) -> list[int]:
        """Positions of the indicators that may match, in set order."""
        found: set[int] = set(self.residual)
        for name, table in self.hash.items():
            for value in facts.get(name, ()):
                hit = table.get(value)
                if hit is not None:
                    found.update(hit)
        for name, table in self.prefix.items():
            for value in facts.get(name, ()):
                for n in range(1, len(value) + 1):
                    hit = table.get(value[:n])
                    if hit is not None:
                        found.update(hit)
        for name, table in self.tokens.items():
            for value in facts.get(name, ()):
                for word in name_tokens(value):
                    hit = table.get(word)
                    if hit is not None:
                        found.update(hit)
        for leaf, positions in self.groups.values():
            if _group_open(leaf, facts, memo):
                found.update(positions)
        for name, (bounds, positions) in self.lower.items():
            values = facts.get(name, ())
            if values:
                found.update(positions[: bisect_right(bounds, max(values))])
        for name, (bounds, positions) in self.upper.items():
            values = facts.get(name, ())
            if values:
                found.update(positions[bisect_left(bounds, min(values)):])
        for name, positions in self.exists.items():
            if facts.get(name):
                found.update(positions)
        return sorted(found)

    def stats(self) -> dict[str, int]:
        return {
            "indicators": len(self.indicators),
            "hash_keys": sum(len(t) for t in self.hash.values()),
            "prefix_keys": sum(len(t) for t in self.prefix.values()),
            "word_keys": sum(len(t) for t in self.tokens.values()),
            "list_groups": len(self.groups),
            "ranges": sum(len(b) for b, _ in self.lower.values()) + sum(len(b) for b, _ in self.upper.values()),
            "exists": sum(len(p) for p in self.exists.values()),
            "residual": len(self.residual),
        }


def choose(node: Node, procedures: frozenset[str] = frozenset()) -> tuple[float, list[Anchor]] | None:
    """(cost, anchors) for an indicator, or None when only a full evaluation can tell."""
    best = anchors(node)
    if procedures:
        alt = (_COST_COARSE * len(procedures), [("h", "procedure", p) for p in sorted(procedures)])
        if best is None or alt[0] < best[0]:
            best = alt
    return best


def anchors(node: Node) -> tuple[float, list[Anchor]] | None:
    if isinstance(node, All):
        options = [a for a in (anchors(c) for c in node.children) if a is not None]
        return min(options, key=lambda a: a[0]) if options else None
    if isinstance(node, Any_):
        total, keys = 0.0, []
        for child in node.children:
            option = anchors(child)
            if option is None:
                return None
            total += option[0]
            keys += option[1]
        return total, keys
    if isinstance(node, Not):
        return None
    field = node.field  # type: ignore[attr-defined]
    if isinstance(node, Eq):
        cost = _COST_COARSE if FIELDS[field].coarse else _COST_HASH
        return cost * len(node.values), [("h", field, v) for v in node.values]
    if isinstance(node, Prefix):
        if node.lst is not None:
            return _COST_GROUP, [("g", node)]
        # One- or two-character prefixes (HS sections) open for many trucks.
        cost = sum(_COST_PREFIX * (10.0 if len(p) <= 2 else 1.0) for p in node.prefixes)
        return cost, [("p", field, p) for p in node.prefixes]
    if isinstance(node, InList):
        return _COST_GROUP, [("g", node)]
    if isinstance(node, Fuzzy):
        if node.lst is not None:
            return _COST_GROUP + 1.0, [("g", node)]
        words = sorted({w for t in node.targets for w in name_tokens(t)})
        return _COST_TOKEN * len(words), [("t", field, w) for w in words]
    if isinstance(node, Compare):
        if node.low != float("-inf"):
            return _COST_RANGE, [("lo", field, node.low)]
        return _COST_RANGE, [("hi", field, node.high)]
    if isinstance(node, (Regex, Exists)):
        return _COST_EXISTS, [("e", field)]
    raise TypeError(f"no anchor rule for {type(node).__name__}")


def _warm(node: Node) -> None:
    if isinstance(node, (All, Any_)):
        for child in node.children:
            _warm(child)
    elif isinstance(node, Not):
        _warm(node.child)
    elif getattr(node, "lst", None) is not None:
        if isinstance(node, Fuzzy):
            node.lst.token_index(node.kind)
        else:
            node.lst.normalized(node.kind)


def _group_open(leaf: Node, facts: Facts, memo: dict) -> bool:
    # A fuzzy group opens when any name shares a word with the value: the per-indicator
    # thresholds are then checked in the full evaluation.
    if isinstance(leaf, Fuzzy):
        return leaf._best(facts, memo) is not None
    return leaf.test(facts, memo)


def _sorted(pairs: list[tuple[float, int]]) -> tuple[list[float], list[int]]:
    pairs.sort()
    return [b for b, _ in pairs], [p for _, p in pairs]
