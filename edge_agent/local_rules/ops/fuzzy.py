"""fuzzy: a name close to one of the names written, or to a list's entries.

A value matches a name when, after normalisation, the two share at least one word and
rapidfuzz's token_sort_ratio (0..100, Indel similarity of the words in sorted order)
reaches the threshold (default 90). The shared word is part of the definition: it keeps
a million-name list searchable in microseconds through a word index, and real variants
(word order, punctuation, legal forms, script, a typo in one word) keep a word in common.
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz, process

from edge_agent.local_rules.fields import NORMALIZERS, Facts
from edge_agent.local_rules.normalize import name_tokens
from edge_agent.local_rules.ops.base import (
    COST_GROUP,
    COST_TOKEN,
    Anchors,
    ConditionError,
    Leaf,
    Operator,
    strings,
)
from edge_agent.local_rules.selectivity import SelectivityList

DEFAULT_FUZZY_THRESHOLD = 90.0


class Fuzzy(Leaf):
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
        best = self._best(facts, memo)
        if best is None:
            return
        score, name, value = best
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

    def anchors(self) -> Anchors:
        if self.lst is not None:
            return COST_GROUP + 1.0, [("g", self)]
        words = sorted({w for t in self.targets for w in name_tokens(t)})
        return COST_TOKEN * len(words), [("t", self.field, w) for w in words]

    def warm(self) -> None:
        if self.lst is not None:
            self.lst.token_index(self.kind)

    def opens_group(self, facts: Facts, memo: dict) -> bool:
        # The group opens when any name shares a word with the value: each indicator's
        # threshold is then checked in the full evaluation.
        return self._best(facts, memo) is not None


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


def compile_fuzzy(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> Fuzzy:
    threshold = leaf.get("threshold", DEFAULT_FUZZY_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 100:
        raise ConditionError(f"fuzzy threshold must be a number in (0, 100], got {threshold!r}")
    if lst is not None:
        return Fuzzy(name, (), None, lst, kind, float(threshold))
    value = leaf.get("value")
    targets = tuple(NORMALIZERS[kind](t) for t in strings(op, value))
    if not all(targets):
        raise ConditionError(f"fuzzy value {value!r} is empty after normalisation")
    return Fuzzy(name, targets, value, None, kind, float(threshold))


OPERATOR = Operator(names=("fuzzy",), compile=compile_fuzzy, kinds="text", lists="optional",
                    extra_keys=frozenset({"threshold"}))
