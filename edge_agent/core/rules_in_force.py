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
from edge_agent.core.rules_archive import archive, compose, current_sources, digest_of
from edge_agent.local_rules import IndicatorSet, assess, load_indicator_set
from edge_agent.local_rules.indicators import site_indicator_files
from edge_agent.models import Observations, PreArrival
from edge_agent.store import Store
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
    sets: list[tuple[IndicatorSet, datetime | None]] = [
        (load_indicator_set(path, channels=channels), None)
        for path in site_indicator_files(config.rules.indicator_files, data_dir)]
    signed = bundle_expiries(trust_dir(config, data_dir))
    signed.update(expiries or {})
    for slot, document in active_documents(trust_dir(config, data_dir), replacing):
        found = load_indicator_set(document, channels=channels)
        if not found.version:
            found = IndicatorSet(slot, found.indicators, found.lists, found.issued_at, found.expires_at, found.rejected)
        sets.append((found, signed.get(slot)))
    rules = compose(sets, config.site.id, config.site.region)
    if index:
        rules.index()
    return rules


def record_rules_in_force(config: AgentConfig, data_dir: Path, store: Store, at: datetime) -> str:
    """Archive the sources of the set in force now and record from when it is in force
    (a no-op when the composition did not change). Returns the composition's digest.

    Runs where the rules change: at start and on the core thread."""
    trust = trust_dir(config, data_dir)
    sources = archive(current_sources(config, data_dir, trust, bundle_expiries(trust)), data_dir)
    digest = digest_of(sources, config.site.id, config.site.region)
    store.rules_went_in_force(digest, [s.to_json() for s in sources], at)
    return digest


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
        # Called after every swap (the agent archives the set now in force).
        self.on_change: Callable[[], None] | None = None

    @classmethod
    def for_site(cls, config: AgentConfig, data_dir: Path) -> RulesAssessor:
        """The site's rules in force now, recomposed from the same sources on `reload`."""
        return cls(config, rules_in_force(config, data_dir), reloader=lambda: rules_in_force(config, data_dir))

    @property
    def label(self) -> str:
        return str(getattr(self.rules, "version", ""))

    def replace(self, rules: Any) -> None:
        self.rules = rules
        if self.on_change is not None:
            self.on_change()

    def reload(self) -> None:
        """Recompose the set from its sources (after a file or a bundle changed)."""
        if self.reloader is not None:
            self.replace(self.reloader())

    def __call__(self, record: PreArrival | None, seen: Observations, *, now: datetime) -> Any:
        verdict = assess(record, seen, self.rules, self.policy, now=now, site_tz=self.site_tz)
        raised = self.floor(record, seen) if self.floor else None
        return with_floor(verdict, raised, self.policy)


def with_floor(verdict: Any, raised: tuple[str, str] | None, policy: PolicyConfig) -> Any:
    """The verdict with the RAU's raised channel applied when that one is stricter (the
    verdict then names it in `rau_floor`, so a replay can apply it again)."""
    if raised is None:
        return verdict
    channel, reason = raised
    codes = {c.code for c in policy.channels}
    if channel not in codes or policy.channel(channel).precedence >= policy.channel(verdict.channel).precedence:
        return verdict
    note = f"Channel raised to {policy.channel(channel).label} by the RAU" + (f": {reason}" if reason else "")
    return replace(verdict, channel=channel, instructions=[*verdict.instructions, note], rau_floor=channel,
                   rau_floor_reason=reason)
