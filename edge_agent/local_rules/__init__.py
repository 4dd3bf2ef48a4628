"""The local risk engine: indicators, selectivity lists, channels and random selection.

    rules = load_indicator_set("central.json")          # raises IndicatorError
    verdict = assess(record, seen, rules, policy, now=now, site_tz="Europe/Belgrade")
    verdict.channel, verdict.hits, verdict.instructions

See docs/indicators.md for the file formats.
"""

from edge_agent.errors import IndicatorError
from edge_agent.local_rules.engine import Verdict, assess
from edge_agent.local_rules.indicators import Indicator, IndicatorSet, load_indicator_set, load_indicator_sets
from edge_agent.local_rules.rescreen import rescreen

__all__ = [
    "Indicator",
    "IndicatorError",
    "IndicatorSet",
    "Verdict",
    "assess",
    "load_indicator_set",
    "load_indicator_sets",
    "rescreen",
]
