"""The naive reference evaluator: every indicator, every leaf, straight from the JSON.

It shares with the engine only what defines the semantics (the field catalogue's
facts, the normalisers, the fuzzy score and the keyed-hash share pick), not the
compiled nodes or the index, and it reads the indicator set as written. Lists are
prepared once (normalised entries), because a list is data, not an index over
indicators. Used by the equivalence tests and by benchmarks/rules.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz

from edge_agent.config import PolicyConfig
from edge_agent.local_rules.fields import FIELDS, NORMALIZERS, extract
from edge_agent.local_rules.normalize import normalize_code, normalize_plate
from edge_agent.local_rules.policy import share_channel


class NaiveEngine:
    def __init__(self, raw_set: dict[str, Any]) -> None:
        self.indicators = list(raw_set.get("indicators", []))
        self.entries = {name: spec["entries"] for name, spec in raw_set.get("lists", {}).items()}
        self._normalized: dict[tuple[str, str], list[str]] = {}
        self._sets: dict[tuple[str, str], set[str]] = {}

    def prepare(self, kinds: tuple[str, ...] = ("name", "plate", "hs", "code", "text")) -> None:
        for name in self.entries:
            for kind in kinds:
                self._list(name, kind)

    def _list(self, name: str, kind: str) -> list[str]:
        key = (name, kind)
        if key not in self._normalized:
            norm = NORMALIZERS[kind]
            values = [n for n in (norm(e) for e in self.entries[name]) if n]
            self._normalized[key] = values
            self._sets[key] = set(values)
        return self._normalized[key]

    def hits(self, record, seen, policy: PolicyConfig, *, now: datetime, site_tz: str = "UTC") -> list[tuple[str, str]]:
        facts = extract(record, seen, now=now, site_tz=site_tz, empty_truck_max_kg=policy.empty_truck_max_kg)
        key = record.reference if record is not None else "plate:" + normalize_plate(seen.tractor_plate)
        memo: dict = {}
        out = []
        for ind in self.indicators:
            if ind.get("status", "active") != "active":
                continue
            if ind.get("valid_from") and now < _time(ind["valid_from"]):
                continue
            if ind.get("valid_to") and now > _time(ind["valid_to"]):
                continue
            procedures = {normalize_code(p) for p in ind.get("procedures", [])}
            if procedures and not procedures.intersection(facts.get("procedure", ())):
                continue
            if not self._eval(ind["when"], facts, memo):
                continue
            action = ind["action"]
            if action.get("channel") is not None:
                channel = action["channel"]
            else:
                channel = share_channel(action["shares_pct"], policy.random_secret, f"{ind['id']}|{key}")
            out.append((ind["id"], channel))
        return out

    def _eval(self, node: dict, facts: dict, memo: dict) -> bool:
        if "all" in node:
            return all(self._eval(c, facts, memo) for c in node["all"])
        if "any" in node:
            return any(self._eval(c, facts, memo) for c in node["any"])
        if "not" in node:
            return not self._eval(node["not"], facts, memo)
        field, op = node["field"], node["op"]
        kind = FIELDS[field].kind
        values = facts.get(field, ())
        norm = NORMALIZERS.get(kind, lambda v: v)
        value = node.get("value")
        if op == "exists":
            return len(values) > 0
        if op == "eq":
            target = norm(value) if kind in NORMALIZERS else (float(value) if kind == "number" else value)
            return any(v == target for v in values)
        if op == "in":
            targets = [norm(x) if kind in NORMALIZERS else (float(x) if kind == "number" else x) for x in value]
            return any(v == t for v in values for t in targets)
        if op == "gt":
            return any(v > value for v in values)
        if op == "ge":
            return any(v >= value for v in values)
        if op == "lt":
            return any(v < value for v in values)
        if op == "le":
            return any(v <= value for v in values)
        if op == "between":
            return any(value[0] <= v <= value[1] for v in values)
        if op == "regex":
            return any(re.search(value, v) for v in values)
        if op == "prefix":
            if "list" in node:
                memo_key = ("prefix", field, node["list"])
                if memo_key not in memo:
                    prefixes = self._list(node["list"], kind)
                    memo[memo_key] = any(v.startswith(p) for v in values for p in prefixes)
                return memo[memo_key]
            else:
                prefixes = [norm(p) for p in ([value] if isinstance(value, str) else value)]
            return any(v.startswith(p) for v in values for p in prefixes)
        if op == "in_list":
            self._list(node["list"], kind)
            entries = self._sets[(node["list"], kind)]
            return any(v in entries for v in values)
        if op == "fuzzy":
            threshold = node.get("threshold", 90)
            if "list" in node:
                memo_key = (field, node["list"])
                if memo_key not in memo:
                    memo[memo_key] = self._best_scores(values, self._list(node["list"], kind))
                return memo[memo_key] >= threshold
            targets = [norm(t) for t in ([value] if isinstance(value, str) else value)]
            return self._best_scores(values, targets) >= threshold
        raise AssertionError(f"unknown op {op}")

    @staticmethod
    def _best_scores(values, names) -> float:
        best = -1.0
        for v in values:
            words = set(v.split())
            for name in names:
                if words & set(name.split()):
                    best = max(best, fuzz.token_sort_ratio(v, name))
        return best


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
