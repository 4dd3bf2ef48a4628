"""Re-screening: assess every pending pre-arrival again when the indicator set changes.

A truck announced by SEED but not yet at the lane has no measured mass and no plate
read; it is assessed with the plates of its own record, so indicators on the record
(lists, HS codes, parties) hit before the truck arrives and the lane can be told.
Indicators that need the crossing's evidence (weight, plate match) simply do not hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from edge_agent.config import PolicyConfig
from edge_agent.local_rules.engine import Verdict, assess
from edge_agent.local_rules.indicators import IndicatorSet
from edge_agent.models import Observations, PreArrival


def rescreen(
    pending: Iterable[PreArrival],
    rules: IndicatorSet,
    policy: PolicyConfig,
    *,
    now: datetime,
    site_tz: str = "UTC",
) -> list[tuple[str, Verdict]]:
    """(reference, verdict) for each pending record, in the order given."""
    rules.index()
    out: list[tuple[str, Verdict]] = []
    for record in pending:
        seen = Observations(
            lane="", tractor_plate=record.tractor_plate, trailer_plate=record.trailer_plate,
            plate_match="none", measured_kg=None, at=now,
        )
        out.append((record.reference, assess(record, seen, rules, policy, now=now, site_tz=site_tz)))
    return out
