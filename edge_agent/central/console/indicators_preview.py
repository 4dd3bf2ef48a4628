"""What a draft indicator set would have hit: the pre-arrival records the hub routed in
the last days, assessed with the risk engine as the sites assess a truck not yet at the
lane (`local_rules.rescreen`: the record's own plates, no weight), counted per site.

Pure: the caller reads the records from the ledger (`Ledger.routed_since`) and passes
`now`. There is no second matcher here: every hit is `local_rules.assess`'s. What the
lane adds (the measured weight, the plate read) is not in the ledger's records, so
indicators on those never hit in a preview; and the hub does not know the sites'
regions, so an indicator scoped to regions only is counted at every site.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from edge_agent.config import PolicyConfig
from edge_agent.local_rules import IndicatorSet, rescreen
from edge_agent.models import PreArrival

MAX_DAYS = 90


@dataclass
class SitePreview:
    site: str
    records: int = 0  # trucks announced to the site in the window
    hit: int = 0  # of them, trucks at least one indicator of the draft hit


@dataclass
class Preview:
    days: int
    sites: list[SitePreview] = field(default_factory=list)
    by_indicator: dict[str, int] = field(default_factory=dict)  # indicator id -> trucks hit
    unreadable: int = 0  # stored records that are not pre-arrival records any more

    @property
    def records(self) -> int:
        return sum(s.records for s in self.sites)

    @property
    def hit(self) -> int:
        return sum(s.hit for s in self.sites)


def for_site(rules: IndicatorSet, site: str) -> IndicatorSet:
    """The indicators a site would run: unscoped ones, those naming it, and (the hub
    knowing no regions) those scoped to regions."""
    kept = tuple(i for i in rules.indicators if not i.sites or site in i.sites)
    return IndicatorSet(rules.version, kept, dict(rules.lists), rules.issued_at, rules.expires_at)


def preview(rules: IndicatorSet, records: list[tuple[str, dict[str, Any]]], policy: PolicyConfig, *,
            now: datetime, days: int) -> Preview:
    """How many of the routed records the set would have hit, per site and per indicator."""
    by_site: dict[str, list[PreArrival]] = {}
    result = Preview(days=days)
    for site, body in records:
        try:
            by_site.setdefault(site, []).append(PreArrival.model_validate(body))
        except ValidationError:
            result.unreadable += 1
    counts: Counter[str] = Counter()
    for site in sorted(by_site):
        line = SitePreview(site, records=len(by_site[site]))
        for _, verdict in rescreen(by_site[site], for_site(rules, site), policy, now=now):
            ids = {h.indicator_id for h in verdict.hits}
            line.hit += bool(ids)
            counts.update(ids)
        result.sites.append(line)
    result.by_indicator = {i.id: counts.get(i.id, 0) for i in rules.indicators}
    return result
