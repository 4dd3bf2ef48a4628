"""What the RAU sends down, applied by the core: signed indicator bundles and channel raises.

The sync client only decodes; these handlers run on the core thread. A bundle is verified
there (fast), then composed with the site's other sets, indexed and the pending
pre-arrivals re-screened on a worker thread, which only computes; back on the core
thread, in one event's transaction, the trust state is persisted, the set swapped in and
the pre-screening hits queued. Bundles are taken one at a time, in arrival order. A
rejected bundle is logged, counted and queued upstream while the last good set stays in
force (docs/sync.md). A restart between verifying and applying loses nothing that
matters: the set in force is still the last good one, and the hub keeps full bundles
retained, so the same bundle arrives again.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.core.context import CoreContext, refuse
from edge_agent.core.officers import hold_changed
from edge_agent.core.rules_in_force import rules_in_force, trust_dir
from edge_agent.errors import IndicatorError
from edge_agent.lane import LaneState, raise_channel
from edge_agent.local_rules import rescreen
from edge_agent.models import (
    HoldChanged,
    IndicatorBundleReceived,
    IndicatorSetPrepared,
    Observations,
    PreArrival,
    RauCommand,
    utcnow,
)
from edge_agent.plates.normal_form import normalize_plate
from edge_agent.store import RauRaise
from edge_agent.sync.bundles import Accepted, BundleRejected, active_set, slot_for_topic, verify_bundle
from edge_agent.sync.trust import TrustStore

log = logging.getLogger(__name__)

PREPARE_SWITCH_INTERVAL_S = 0.0002


@dataclass
class _Preparation:
    """A verified bundle on its way in: filled by the worker, applied by the core."""

    event: IndicatorBundleReceived
    result: Accepted
    rules: Any = None
    prescreen: list = field(default_factory=list)
    pending: int = 0


class RauLink:
    """Install with `register()` before the core's thread starts."""

    def __init__(self, core: CoreContext, config: AgentConfig, data_dir: Path, *,
                 refetch: Callable[[str], None] | None = None) -> None:
        self.core = core
        self.config = config
        self.data_dir = Path(data_dir)
        self.refetch = refetch
        self.raises: dict[str, RauRaise] = {}
        self._preparing: _Preparation | None = None
        self._waiting: deque[IndicatorBundleReceived] = deque()

    def register(self) -> None:
        self.core.register(IndicatorBundleReceived, lambda core, event: self.bundle(event))
        self.core.register(RauCommand, lambda core, event: self.command(event))
        self.core.register(IndicatorSetPrepared, lambda core, event: self.prepared(event))
        self.core.crossing_ended_hooks.append(self.crossing_ended)
        self.core.tick_hooks.append(self.expire_raises)
        self.raises.update(self.core.store.rau_raises())

    # ------------------------------------------------------------------ bundles

    @property
    def busy(self) -> bool:
        """A bundle is being prepared off the core thread (or waits for that one)."""
        return self._preparing is not None or bool(self._waiting)

    def bundle(self, event: IndicatorBundleReceived) -> list:
        if self._preparing is not None:
            # One at a time: each bundle is verified against the trust state the one
            # before it left (version floors, a rotated root).
            self._waiting.append(event)
            return []
        site = self.config.site
        trust = TrustStore(trust_dir(self.config, self.data_dir))
        if not trust.installed:
            return self._rejected(event, BundleRejected("no_root", "no root of trust installed at provisioning"))
        try:
            state = trust.load()
        except (OSError, ValueError, KeyError, TypeError) as err:
            # A damaged trust store: refuse what cannot be checked, keep the set in force.
            return self._rejected(event, BundleRejected("trust_store_unreadable", f"{type(err).__name__}: {err}"))
        slot = slot_for_topic(event.topic, site.id, site.region)
        # Never raises: whatever the payload holds, a refusal comes back with its reason.
        result = verify_bundle(
            event.payload, state, site=site.id, region=site.region, now=event.at,
            current=active_set(trust, state, slot), expected_slot=slot,
            max_bytes=int(self.config.sync.max_bundle_mb * 2**20),
        )
        if isinstance(result, BundleRejected):
            return self._rejected(event, result)
        # Composing and indexing a large set takes seconds (about 4 s for 100,000
        # indicators) and re-screening as long again: the lanes must not wait for that.
        job = _Preparation(event, result)
        self._preparing = job
        pending = self.core.store.pending_prearrivals()
        threading.Thread(target=self._prepare, args=(job, pending), name="bundle-prepare", daemon=True).start()
        return []

    def _prepare(self, job: _Preparation, pending: list) -> None:
        """Worker thread: everything slow, nothing written; the core applies the outcome."""
        problem = ""
        # This thread computes in Python for seconds. At the default 5 ms switch interval
        # the core thread, which lets go of the GIL at every SQLite call, waits up to that
        # long each time it wants it back: during a 20,000-indicator preparation a truck's
        # three events took 0.65 s. At 0.2 ms they took 65 ms, and the preparation no longer.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(PREPARE_SWITCH_INTERVAL_S)
        try:
            result = job.result
            job.rules = rules_in_force(self.config, self.data_dir, replacing={result.slot: result.indicators},
                                       expiries={result.slot: result.expires})
            job.prescreen = [(reference, verdict) for reference, verdict in
                             rescreen(pending, job.rules, self.config.policy, now=job.event.at,
                                      site_tz=self.config.site.timezone) if verdict.hits]
            job.pending = len(pending)
        except IndicatorError as err:
            problem = str(err)
        except Exception as err:  # noqa: BLE001 - reported as a rejection; the last good set stays
            log.exception("bundle_prepare_failed slot=%s", job.result.slot)
            problem = f"could not be prepared: {err!r}"
        finally:
            sys.setswitchinterval(switch)
        self.core.post(IndicatorSetPrepared(topic=job.event.topic, slot=job.result.slot,
                                            version=job.result.version, problem=problem[:2000], source="rau"))

    def prepared(self, event: IndicatorSetPrepared) -> list:
        job, self._preparing = self._preparing, None
        if job is None or (job.result.slot, job.result.version) != (event.slot, event.version):
            log.warning("bundle_prepared_unexpected slot=%s version=%d", event.slot, event.version)
        elif event.problem:
            # Signed by the RAU yet not a set this site can run: keep the last good one.
            self._rejected(job.event, BundleRejected("invalid_indicators", event.problem, event.slot, event.version))
        else:
            self._apply(job, TrustStore(trust_dir(self.config, self.data_dir)))
        commands: list = []
        while self._waiting and self._preparing is None:
            commands += self.bundle(self._waiting.popleft())
        return commands

    def _apply(self, job: _Preparation, trust: Any) -> None:
        core, site, result, rules = self.core, self.config.site, job.result, job.rules
        trust.save(result.state, slot=result.slot, indicators=result.indicators)
        core.assessor.replace(rules)
        core.counters["bundles_applied"] += 1
        core.store.outbox_append("indicators_applied", {
            "site": site.id, "slot": result.slot, "version": result.version, "sha256": result.sha256,
            "kind": result.kind, "indicators": len(rules), "expires": result.expires.isoformat(),
        }, job.event.at)
        for reference, verdict in job.prescreen:
            core.store.outbox_append("prescreen_hit", {
                "site": site.id, "reference": reference, "channel": verdict.channel,
                "indicators": sorted({h.indicator_id for h in verdict.hits}),
                "indicator_set": verdict.indicator_set,
            }, job.event.at)
        core.counters["prescreen_hits"] += len(job.prescreen)
        log.info("bundle_applied slot=%s version=%d kind=%s indicators=%d rescreened=%d prescreen_hits=%d",
                 result.slot, result.version, result.kind, len(rules), job.pending, len(job.prescreen))

    def _rejected(self, event: IndicatorBundleReceived, rejected: Any) -> list:
        core = self.core
        core.counters["bundles_rejected"] += 1
        core.counters[f"bundles_rejected_{rejected.reason}"] += 1
        log.warning("bundle_rejected topic=%s reason=%s detail=%s", event.topic, rejected.reason, rejected.detail)
        core.store.outbox_append("bundle_rejected", rejected.report(event.topic, self.config.site.id), event.at)
        if getattr(rejected, "fallback_full", False) and self.refetch is not None:
            self.refetch(event.topic)
        return []

    # ------------------------------------------------------------------ commands

    def command(self, event: RauCommand) -> list:
        if event.command == "withdraw_raise":
            return self._withdraw(event)
        if event.command in ("hold", "release_hold"):
            return self._hold(event)
        if event.command != "raise_channel":
            return []  # resend and ping are the sync client's; the event is stored all the same
        policy = self.config.policy
        codes = {c.code for c in policy.channels}
        keys = raise_keys(event.reference, event.plate)
        if event.channel not in codes or not keys:
            self.core.counters["rau_raise_refused"] += 1
            log.warning("rau_raise_refused id=%s reason=%s", event.id,
                        "unknown channel" if event.channel not in codes else "no reference or plate")
            return []
        found = RauRaise(event.channel, event.reason, event.id, event.expires_at)
        for key in keys:
            self.raises[key] = found
            self.core.store.save_rau_raise(key, found, event.at)
        self.core.store.outbox_append("rau_raise", {
            "site": self.config.site.id, "command": event.id, "reference": event.reference,
            "plate": event.plate, "channel": event.channel,
            "expires_at": event.expires_at.isoformat() if event.expires_at else None}, event.at)
        log.info("rau_raise_recorded reference=%s plate=%s channel=%s", event.reference or "-",
                 event.plate or "-", event.channel)
        return self._raise_in_lane(keys, event)

    def _raise_in_lane(self, keys: set[str], event: RauCommand) -> list:
        core = self.core
        commands: list = []
        for lane_id, lane in list(core.lanes.items()):
            if not lane.crossing_id or not keys & lane_keys(lane):
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
        """The strictest channel the RAU raised, and not yet expired, for this truck's
        declaration or plates: (channel, reason)."""
        keys = raise_keys(record.reference if record else "", seen.tractor_plate)
        keys |= raise_keys("", seen.trailer_plate)
        found = [self.raises[k] for k in keys if k in self.raises and not self.raises[k].expired(seen.at)]
        if not found:
            return None
        policy = self.config.policy
        codes = {c.code for c in policy.channels}
        strictest = min(found, key=lambda r: policy.channel(r.channel).precedence if r.channel in codes else 1_000)
        return strictest.channel, strictest.reason

    # ------------------------------------------------------------------ how a raise ends

    def crossing_ended(self, lane: LaneState, outcome: str) -> None:
        """A raise is for one truck: it ends with the crossing that carried its reference or plate."""
        if lane.assessment is None:
            return  # the truck never reached a decision: the raise still waits for it
        self._end(sorted(lane_keys(lane) & set(self.raises)), f"crossing {lane.crossing_id} {outcome}")

    def expire_raises(self, now: datetime) -> None:
        self._end(sorted(k for k, r in self.raises.items() if r.expired(now)), "expired")

    def _hold(self, event: RauCommand) -> list:
        """A case at the RAU keeps a crossing's data (or lets it go): as the head of office's hold."""
        if not event.crossing_id or not event.reason:
            return refuse(self.core, event, f"{event.command} needs a crossing_id and a reason")
        return hold_changed(self.core, HoldChanged(
            crossing_id=event.crossing_id, action="hold" if event.command == "hold" else "release",
            user="rau", reason=event.reason, at=event.at, source="rau"))

    def _withdraw(self, event: RauCommand) -> list:
        keys = raise_keys(event.reference, event.plate)
        if not keys & set(self.raises):
            self.core.counters["rau_withdraw_unknown"] += 1
            log.warning("rau_withdraw_unknown id=%s reference=%s plate=%s", event.id, event.reference or "-",
                        event.plate or "-")
            return []
        # A truck already in the lane keeps its channel: a channel is never lowered.
        self._end(sorted(keys & set(self.raises)), f"withdrawn by the RAU: {event.reason}" if event.reason
                  else "withdrawn by the RAU")
        return []

    def _end(self, keys: list[str], why: str) -> None:
        if not keys:
            return
        core = self.core
        ended = {k: self.raises.pop(k) for k in keys}
        core.store.delete_rau_raises(keys)
        for command_id in sorted({r.command_id for r in ended.values()}):
            core.store.outbox_append("rau_raise_ended", {
                "site": self.config.site.id, "command": command_id,
                "keys": [k for k, r in ended.items() if r.command_id == command_id], "reason": why}, utcnow())
        core.counters["rau_raises_ended"] += len(keys)
        log.info("rau_raise_ended keys=%s reason=%s", ",".join(keys), why)


def raise_keys(reference: str, plate: str) -> set[str]:
    """What a raise is filed under: the declaration's reference and the plate's normal form."""
    keys = set()
    if reference:
        keys.add(f"ref:{reference}")
    if plate and normalize_plate(plate):
        keys.add(f"plate:{normalize_plate(plate)}")
    return keys


def lane_keys(lane: LaneState) -> set[str]:
    keys = raise_keys(lane.reference, lane.tractor.text if lane.tractor else "")
    return keys | raise_keys("", lane.trailer.text if lane.trailer else "")
