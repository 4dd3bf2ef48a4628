"""Which indicators a site runs with, and the assessor that applies them.

Three sources merge into the set in force: the files the site configuration names, the
sets imported into `<data_dir>/indicators/` (the local analyst's profiles among them),
and the signed bundles the RAU sent that the trust store holds as active. Only the
indicators scoped to this site or its region are kept, and the index is built before the
set goes live, so the first truck after a swap does not pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, PolicyConfig
from edge_agent.local_rules import IndicatorSet, assess, load_indicator_set
from edge_agent.local_rules.indicators import site_indicator_files
from edge_agent.models import Observations, PreArrival
from edge_agent.sync.trust import TrustStore

log = logging.getLogger(__name__)


def trust_dir(config: AgentConfig, data_dir: Path) -> Path:
    return Path(config.sync.trust_dir) if config.sync.trust_dir else Path(data_dir) / "trust"


def active_documents(trust: Path, replacing: dict[str, dict] | None = None) -> list[tuple[str, dict]]:
    """(slot, indicator document) of every bundle in force, with `replacing` swapped in."""
    store = TrustStore(trust)
    docs: dict[str, dict] = {}
    if store.installed:
        for slot in store.load().applied:
            document = store.active(slot)
            if document is not None:
                docs[slot] = document
    docs.update(replacing or {})
    return sorted(docs.items())


def rules_in_force(config: AgentConfig, data_dir: Path, *, replacing: dict[str, dict] | None = None,
                   expiries: dict[str, datetime] | None = None, index: bool = True) -> Any:
    """The merged, site-scoped, indexed IndicatorSet. Raises IndicatorError on a bad source.

    `expiries` maps a bundle slot to its signed expiry, which makes the set STALE past it
    even when the indicator document itself names none.
    """
    channels = [c.code for c in config.policy.channels]
    sets = [load_indicator_set(path, channels=channels)
            for path in site_indicator_files(config.rules.indicator_files, data_dir)]
    signed = bundle_expiries(trust_dir(config, data_dir))
    signed.update(expiries or {})
    for slot, document in active_documents(trust_dir(config, data_dir), replacing):
        found = load_indicator_set(document, channels=channels)
        expires = signed.get(slot)
        if expires is not None and (found.expires_at is None or expires < found.expires_at):
            found = IndicatorSet(found.version or slot, found.indicators, found.lists, found.issued_at, expires,
                                 found.rejected)
        sets.append(found)
    if not sets:
        log.warning("rules_empty reason=no indicator files configured and no bundle received")
    merged = IndicatorSet.merge(*sets)
    rules = merged.for_site(config.site.id, config.site.region)
    if index:
        rules.index()
    return rules


def bundle_expiries(trust: Path) -> dict[str, datetime]:
    store = TrustStore(trust)
    if not store.installed:
        return {}
    return {slot: applied.expires for slot, applied in store.load().applied.items() if applied.expires}


class RulesAssessor:
    """The core's `assessor`: the active indicator set, swapped atomically, plus the
    channel floors the RAU raised for a declaration or a plate."""

    def __init__(self, config: AgentConfig, rules: Any, *,
                 floor: Callable[[PreArrival | None, Observations], tuple[str, str] | None] | None = None,
                 reloader: Callable[[], Any] | None = None) -> None:
        self.policy = config.policy
        self.site_tz = config.site.timezone
        self.rules = rules
        self.floor = floor
        self.reloader = reloader

    @classmethod
    def for_site(cls, config: AgentConfig, data_dir: Path) -> RulesAssessor:
        """The site's rules in force now, recomposed from the same sources on `reload`."""
        return cls(config, rules_in_force(config, data_dir), reloader=lambda: rules_in_force(config, data_dir))

    @property
    def label(self) -> str:
        return str(getattr(self.rules, "version", ""))

    def replace(self, rules: Any) -> None:
        self.rules = rules

    def reload(self) -> None:
        """Recompose the set from its sources (after a file or a bundle changed)."""
        if self.reloader is not None:
            self.replace(self.reloader())

    def __call__(self, record: PreArrival | None, seen: Observations, *, now: datetime) -> Any:
        verdict = assess(record, seen, self.rules, self.policy, now=now, site_tz=self.site_tz)
        raised = self.floor(record, seen) if self.floor else None
        return with_floor(verdict, raised, self.policy)


def with_floor(verdict: Any, raised: tuple[str, str] | None, policy: PolicyConfig) -> Any:
    """The verdict with the RAU's raised channel applied when that one is stricter."""
    if raised is None:
        return verdict
    channel, reason = raised
    codes = {c.code for c in policy.channels}
    if channel not in codes or policy.channel(channel).precedence >= policy.channel(verdict.channel).precedence:
        return verdict
    note = f"Channel raised to {policy.channel(channel).label} by the RAU" + (f": {reason}" if reason else "")
    return replace(verdict, channel=channel, instructions=[*verdict.instructions, note])
