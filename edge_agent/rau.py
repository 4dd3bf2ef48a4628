"""What the RAU sends down, applied by the core: signed indicator bundles and channel raises.

The sync client only decodes; these handlers run on the core thread, inside the event's
transaction, so a bundle is verified, persisted, swapped in and the pending pre-arrivals
re-screened as one step, and a rejected bundle is logged, counted and queued upstream
while the last good set stays in force (docs/sync.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.models import IndicatorBundleReceived, Observations, PreArrival, RauCommand
from edge_agent.rules_in_force import rules_in_force, trust_dir

log = logging.getLogger(__name__)


class RauLink:
    """Install with `register()` before the core's thread starts."""

    def __init__(self, core: Any, config: AgentConfig, data_dir: Path, *,
                 refetch: Callable[[str], None] | None = None) -> None:
        self.core = core
        self.config = config
        self.data_dir = Path(data_dir)
        self.refetch = refetch
        self.raises: dict[str, tuple[str, str]] = {}

    def register(self) -> None:
        self.core.handlers["indicator_bundle"] = self.bundle
        self.core.handlers["rau_command"] = self.command
        for row in self.core.store.db.execute("SELECT key, channel, reason FROM rau_raises"):
            self.raises[row[0]] = (row[1], row[2])

    # ------------------------------------------------------------------ bundles

    def bundle(self, event: IndicatorBundleReceived) -> list:
        from edge_agent.errors import IndicatorError
        from edge_agent.sync.bundles import BundleRejected, active_set, slot_for_topic, verify_bundle
        from edge_agent.sync.trust import TrustStore

        site = self.config.site
        trust = TrustStore(trust_dir(self.config, self.data_dir))
        if not trust.installed:
            return self._rejected(event, BundleRejected("no_root", "no root of trust installed at provisioning"))
        state = trust.load()
        slot = slot_for_topic(event.topic, site.id, site.region)
        result = verify_bundle(
            event.payload, state, site=site.id, region=site.region, now=event.at,
            current=active_set(trust, state, slot), max_bytes=int(self.config.sync.max_bundle_mb * 2**20),
        )
        if isinstance(result, BundleRejected):
            return self._rejected(event, result)
        try:
            rules = rules_in_force(self.config, self.data_dir, replacing={result.slot: result.indicators},
                                   expiries={result.slot: result.expires})
        except IndicatorError as err:
            # Signed by the RAU yet not a set this site can run: keep the last good one.
            return self._rejected(event, BundleRejected("invalid_indicators", str(err), result.slot, result.version))
        trust.save(result.state, slot=result.slot, indicators=result.indicators)
        self.core.assessor.replace(rules)
        core = self.core
        core.counters["bundles_applied"] += 1
        core.store.outbox_append("indicators_applied", {
            "site": site.id, "slot": result.slot, "version": result.version, "sha256": result.sha256,
            "kind": result.kind, "indicators": len(rules), "expires": result.expires.isoformat(),
        }, event.at)
        log.info("bundle_applied slot=%s version=%d kind=%s indicators=%d", result.slot, result.version,
                 result.kind, len(rules))
        self._rescreen(rules, event.at)
        return []

    def _rejected(self, event: IndicatorBundleReceived, rejected: Any) -> list:
        core = self.core
        core.counters["bundles_rejected"] += 1
        core.counters[f"bundles_rejected_{rejected.reason}"] += 1
        log.warning("bundle_rejected topic=%s reason=%s detail=%s", event.topic, rejected.reason, rejected.detail)
        core.store.outbox_append("bundle_rejected", rejected.report(event.topic, self.config.site.id), event.at)
        if getattr(rejected, "fallback_full", False) and self.refetch is not None:
            self.refetch(event.topic)
        return []

    def _rescreen(self, rules: Any, now: datetime) -> None:
        from edge_agent.local_rules import rescreen

        pending = self.core.store.pending_prearrivals()
        hits = 0
        for reference, verdict in rescreen(pending, rules, self.config.policy, now=now,
                                           site_tz=self.config.site.timezone):
            if not verdict.hits:
                continue
            hits += 1
            self.core.store.outbox_append("prescreen_hit", {
                "site": self.config.site.id, "reference": reference, "channel": verdict.channel,
                "indicators": sorted({h.indicator_id for h in verdict.hits}),
                "indicator_set": verdict.indicator_set,
            }, now)
        self.core.counters["prescreen_hits"] += hits
        log.info("rescreen_done pending=%d hits=%d", len(pending), hits)

    # ------------------------------------------------------------------ commands

    def command(self, event: RauCommand) -> list:
        if event.command != "raise_channel":
            return []  # resend and ping are the sync client's; the event is stored all the same
        policy = self.config.policy
        codes = {c.code for c in policy.channels}
        keys = raise_keys(event.reference, event.plate, self.core.normalise_plate)
        if event.channel not in codes or not keys:
            self.core.counters["rau_raise_refused"] += 1
            log.warning("rau_raise_refused id=%s reason=%s", event.id,
                        "unknown channel" if event.channel not in codes else "no reference or plate")
            return []
        for key in keys:
            self.raises[key] = (event.channel, event.reason)
            self.core.store.db.execute(
                "INSERT OR REPLACE INTO rau_raises (key, channel, reason, command_id, at) VALUES (?, ?, ?, ?, ?)",
                [key, event.channel, event.reason, event.id, event.at.isoformat()],
            )
        self.core.store.outbox_append("rau_raise", {
            "site": self.config.site.id, "command": event.id, "reference": event.reference,
            "plate": event.plate, "channel": event.channel}, event.at)
        log.info("rau_raise_recorded reference=%s plate=%s channel=%s", event.reference or "-",
                 event.plate or "-", event.channel)
        return self._raise_in_lane(keys, event)

    def _raise_in_lane(self, keys: set[str], event: RauCommand) -> list:
        from edge_agent.console.rechannel import raise_channel

        core = self.core
        commands: list = []
        for lane_id, lane in list(core.lanes.items()):
            if not lane.crossing_id or not keys & lane_keys(lane, core.normalise_plate):
                continue
            new, cmds, why = raise_channel(lane, lane.crossing_id, event.channel, self.config.policy, core.clock())
            if why:
                log.info("rau_raise_not_applied lane=%s reason=%s", lane_id, why)
                continue
            core.lanes[lane_id] = new
            core.store.set_crossing_channel(lane.crossing_id, event.channel)
            commands += cmds
        return commands

    def floor(self, record: PreArrival | None, seen: Observations) -> tuple[str, str] | None:
        """The strictest channel the RAU raised for this truck's declaration or plates."""
        keys = raise_keys(record.reference if record else "", seen.tractor_plate, self.core.normalise_plate)
        keys |= raise_keys("", seen.trailer_plate, self.core.normalise_plate)
        found = [self.raises[k] for k in keys if k in self.raises]
        if not found:
            return None
        policy = self.config.policy
        return min(found, key=lambda r: policy.channel(r[0]).precedence if r[0] in
                   {c.code for c in policy.channels} else 1_000)


def raise_keys(reference: str, plate: str, normalise: Callable[[str], str]) -> set[str]:
    keys = set()
    if reference:
        keys.add(f"ref:{reference}")
    if plate and normalise(plate):
        keys.add(f"plate:{normalise(plate)}")
    return keys


def lane_keys(lane: Any, normalise: Callable[[str], str]) -> set[str]:
    keys = raise_keys(lane.reference, lane.tractor.text if lane.tractor else "", normalise)
    return keys | raise_keys("", lane.trailer.text if lane.trailer else "", normalise)
