"""`assess`: one truck, its pre-arrival record (if any) and what the lane saw -> a Verdict.

Pure: no clock (the caller passes `now`), no I/O, no shared state but the indicator
set's index, which is built once and only read afterwards. Called by the core loop for
each truck and by `rescreen` for trucks not yet arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.config import PolicyConfig
from edge_agent.local_rules.fields import deviation, extract
from edge_agent.local_rules.indicators import Indicator, IndicatorSet
from edge_agent.local_rules.normalize import normalize_plate
from edge_agent.local_rules.policy import decide, ranks, share_channel
from edge_agent.models import Hit, Observations, PreArrival


@dataclass(frozen=True, slots=True)
class Verdict:
    """The channel for one truck and everything that led to it."""

    channel: str
    hits: list[Hit] = field(default_factory=list)
    random_selected: bool = False
    deviation_kg: float | None = None
    deviation_pct: float | None = None
    instructions: list[str] = field(default_factory=list)
    stale: bool = False
    indicator_set: str = ""
    random_secret_version: int = 1  # which secret the draws used (PolicyConfig.secret_of_version)
    rau_floor: str = ""  # the channel the RAU raised this truck to, when that decided
    rau_floor_reason: str = ""

    def to_json(self) -> dict:
        return {
            "channel": self.channel,
            "random_selected": self.random_selected,
            "deviation_kg": self.deviation_kg,
            "deviation_pct": self.deviation_pct,
            "stale": self.stale,
            "indicator_set": self.indicator_set,
            "random_secret_version": self.random_secret_version,
            "instructions": list(self.instructions),
            "hits": [h.model_dump(mode="json") for h in self.hits],
        }


def assess(
    record: PreArrival | None,
    seen: Observations,
    rules: IndicatorSet,
    policy: PolicyConfig,
    *,
    now: datetime,
    site_tz: str = "UTC",
) -> Verdict:
    """Every matching indicator, the channel they give under `policy`, and the random draw."""
    facts = extract(record, seen, now=now, site_tz=site_tz, empty_truck_max_kg=policy.empty_truck_max_kg)
    index = rules.index()
    memo: dict = {}
    # Per-channel shares draw on the reference; without a record, on the plate read.
    key = record.reference if record is not None else "plate:" + normalize_plate(seen.tractor_plate)
    matched: list[tuple[Indicator, str]] = []
    indicators = index.indicators
    for pos in index.candidates(facts, memo):
        indicator = indicators[pos]
        if indicator.node.test(facts, memo) and indicator.in_force(now) and indicator.applies_to(facts):
            matched.append((indicator, channel_of(indicator, policy, key)))
    rank = ranks(policy)
    top = min(rank.values()) - 1  # unknown channels sort first, as strongest() treats them
    matched.sort(key=lambda m: (rank.get(m[1], top), -m[0].priority, m[0].id))
    hits = [_hit(indicator, channel, facts, memo) for indicator, channel in matched]
    stale = rules.is_expired(now)
    channel, random_selected = decide(
        (c for _, c in matched), policy,
        reference=record.reference if record is not None else "",
        has_record=record is not None, stale=stale,
    )
    dev_kg = dev_pct = None
    if record is not None and seen.measured_kg is not None:
        dev_kg, dev_pct = deviation(record.gross_kg, seen.measured_kg)
    instructions = list(dict.fromkeys(h.instructions for h in hits if h.instructions))
    return Verdict(
        channel=channel, hits=hits, random_selected=random_selected,
        deviation_kg=dev_kg, deviation_pct=dev_pct, instructions=instructions,
        stale=stale, indicator_set=rules.version, random_secret_version=policy.random_secret_version,
    )


def channel_of(indicator: Indicator, policy: PolicyConfig, key: str) -> str:
    if indicator.channel is not None:
        return indicator.channel
    return share_channel(indicator.shares_pct or {}, policy.random_secret, f"{indicator.id}|{key}")


def _hit(indicator: Indicator, channel: str, facts: dict, memo: dict) -> Hit:
    matched: dict = {}
    indicator.node.explain(facts, memo, matched)
    # Every value here was validated when the set was loaded; skipping pydantic's
    # validation keeps a truck with many hits inside the millisecond budget.
    return Hit.model_construct(
        indicator_id=indicator.id, version=indicator.version, level=indicator.level, channel=channel,
        title=indicator.title, instructions=indicator.instructions, matched=matched, notify=list(indicator.notify),
    )
