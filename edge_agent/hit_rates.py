"""Indicator performance and channel rates, as pure functions over rows.

The RAU judges and tunes a profile by its hit rate: of the trucks an indicator hit,
how many controls found something (the effectiveness measure of customs annual reports).
A site counts its store's `hits` and `control_acts` tables (and `assessments` for the
channel rates); the RAU's console counts the same rows as every site sent them to the
hub (edge_agent/central/console/effectiveness.py). These functions only count, so both
count alike.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from edge_agent.config import PolicyConfig


@dataclass(frozen=True)
class IndicatorStats:
    indicator_id: str
    level: str
    hits: int  # crossings the indicator hit
    controls: int  # of those, crossings with a completed control act
    positives: int  # of those, crossings where a control found something
    hit_rate: float | None  # positives per control; None (unknown) while no control was recorded

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChannelRate:
    channel: str
    count: int
    actual_pct: float
    expected_pct: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def indicator_stats(
    hits: Iterable[Mapping[str, Any]], control_acts: Iterable[Mapping[str, Any]]
) -> list[IndicatorStats]:
    """Hits, controls and positive findings per indicator, most hits first.

    A crossing counts once per indicator however often it was re-assessed; a crossing
    with several control acts is positive when any of them is.
    """
    outcome: dict[str, bool] = {}
    for act in control_acts:
        crossing = act.get("crossing_id") or ""
        if not crossing:
            continue
        outcome[crossing] = outcome.get(crossing, False) or act.get("result") == "positive"
    crossings: dict[str, set[str]] = defaultdict(set)
    levels: dict[str, str] = {}
    for hit in hits:
        indicator = hit.get("indicator_id") or ""
        if not indicator:
            continue
        crossings[indicator].add(hit.get("crossing_id") or "assessment:" + str(hit.get("assessment_id") or ""))
        levels.setdefault(indicator, hit.get("level") or "")
    out = []
    for indicator, hit_crossings in crossings.items():
        controlled = [c for c in hit_crossings if c in outcome]
        positives = sum(1 for c in controlled if outcome[c])
        rate = positives / len(controlled) if controlled else None
        out.append(IndicatorStats(indicator, levels[indicator], len(hit_crossings), len(controlled), positives, rate))
    out.sort(key=lambda s: (-s.hits, s.indicator_id))
    return out


def channel_rates(assessments: Iterable[Mapping[str, Any]], policy: PolicyConfig) -> dict[str, Any]:
    """Actual share per channel against the expected share, and the random selection rate.

    Expected shares come from `policy.expected_share_pct` (None where not set). The
    random rate is selected / (selected + green), to compare with `random_share_pct`.
    A row stands for `row["count"]` assessments when it has that key (rows a database
    already grouped), else for one.
    """
    counts: Counter[str] = Counter()
    selected = 0
    for row in assessments:
        weight = int(row.get("count", 1))
        counts[row.get("channel") or ""] += weight
        selected += weight if row.get("random_selected") else 0
    total = sum(counts.values())
    codes = [c.code for c in sorted(policy.channels, key=lambda c: c.precedence)]
    codes += sorted(set(counts) - set(codes))
    rates = [
        ChannelRate(code, counts[code], 100.0 * counts[code] / total if total else 0.0,
                    policy.expected_share_pct.get(code))
        for code in codes
    ]
    eligible = selected + counts[policy.default_channel]
    return {
        "total": total,
        "channels": [r.to_json() for r in rates],
        "random": {
            "selected": selected,
            "eligible": eligible,
            "actual_pct": 100.0 * selected / eligible if eligible else 0.0,
            "expected_pct": policy.random_share_pct,
        },
    }
