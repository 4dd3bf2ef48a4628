"""The indexed engine: find the few indicators a truck can match without trying them all.

For every indicator, `anchors` picks a set of keys such that the indicator can only be
true when at least one key is present in the truck's facts (a necessary condition,
never a sufficient one): for `all`, the most selective child; for `any`, every child;
`not` gives none. Keys live in:

- hash tables for eq / in (field -> value -> indicators) and for the words of fuzzy
  literals (a fuzzy match needs a shared word, ops/fuzzy.py);
- per-field prefix tables for `prefix` (a value of n characters has n prefixes to look
  up, so HS headings cost ten lookups whatever the number of indicators);
- groups for list operators (in_list, prefix and fuzzy against a list): one lookup per
  (field, list) pair, shared by every indicator that uses it;
- sorted bounds for numeric comparisons (bisect gives the indicators whose bound the
  value passes);
- `exists` per field for regex and exists, the last resort.

Which keys a leaf offers, and what they cost, is the leaf's own hook (`Leaf.anchors`,
ops/); this module combines them through the tree and files them. Indicators with no
anchor (a top-level `not`) are residual and always evaluated. The candidates are then
evaluated in full, so the index can only make things faster, never change a result;
tests/local_rules compare it with a naive evaluator.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from edge_agent.local_rules.fields import Facts
from edge_agent.local_rules.normalize import name_tokens
from edge_agent.local_rules.operators import All, Any_, Leaf, Node, Not, leaves
from edge_agent.local_rules.ops.base import COST_COARSE, Anchors


class Index:
    """Keys -> indicator positions, built once per indicator set."""

    def __init__(self, indicators: Iterable) -> None:
        self.indicators = tuple(i for i in indicators if i.status == "active")
        self.hash: dict[str, dict] = {}
        self.prefix: dict[str, dict[str, list[int]]] = {}
        self.tokens: dict[str, dict[str, list[int]]] = {}
        self.groups: dict[tuple, tuple[Leaf, list[int]]] = {}
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
                    key = (type(leaf).__name__, leaf.field, id(getattr(leaf, "lst", None)), getattr(leaf, "kind", ""))
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
            for leaf in leaves(indicator.node):
                leaf.warm()

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
            if leaf.opens_group(facts, memo):
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


def choose(node: Node, procedures: frozenset[str] = frozenset()) -> Anchors | None:
    """(cost, anchors) for an indicator, or None when only a full evaluation can tell."""
    best = anchors(node)
    if procedures:
        alt: Anchors = (COST_COARSE * len(procedures), [("h", "procedure", p) for p in sorted(procedures)])
        if best is None or alt[0] < best[0]:
            best = alt
    return best


def anchors(node: Node) -> Anchors | None:
    """A tree's keys from its leaves': the cheapest child of `all`, every child of `any`."""
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
    if isinstance(node, Leaf):
        return node.anchors()
    raise TypeError(f"no anchor rule for {type(node).__name__}")


def _sorted(pairs: list[tuple[float, int]]) -> tuple[list[float], list[int]]:
    pairs.sort()
    return [b for b, _ in pairs], [p for _, p in pairs]
