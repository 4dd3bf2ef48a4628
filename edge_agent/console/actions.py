"""The core-side handlers of the console's events.

`register(core)` adds them to `core.handlers`; the core calls each inside the event's
transaction (after storing the event itself), on its own thread, so they may write the
customs database through `core.store` and change `core.lanes`. They never raise for bad
input: an event that cannot apply is logged, counted and left as stored.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.durable import replace_file
from edge_agent.lane import raise_channel, raise_refusal
from edge_agent.models import (
    AuditAnchored,
    ControlActRecorded,
    LocalIndicatorSaved,
    RechannelDecided,
    RechannelRequested,
)

log = logging.getLogger(__name__)

LOCAL_FILE = "local.json"  # <data_dir>/indicators/local.json, as edge_agent.local_rules.cli writes it


def classify_seizure(seizure: bool, evaded_duties_eur: float, criminal_threshold_eur: float) -> str:
    """none, offence (below the threshold) or criminal_report (at or above it)."""
    if not seizure:
        return "none"
    return "criminal_report" if evaded_duties_eur >= criminal_threshold_eur else "offence"


def register(core: Any) -> None:
    """Install the console's handlers on a core (before its thread starts)."""
    handlers = Handlers(core)
    core.handlers["control_act"] = handlers.control_act
    core.handlers["rechannel_requested"] = handlers.rechannel_requested
    core.handlers["rechannel_decided"] = handlers.rechannel_decided
    core.handlers["local_indicator_saved"] = handlers.local_indicator_saved
    core.handlers["audit_anchored"] = handlers.audit_anchored


class Handlers:
    def __init__(self, core: Any) -> None:
        self.core = core

    # ------------------------------------------------------------------ control act

    def control_act(self, event: ControlActRecorded) -> list:
        core = self.core
        row = core.store.db.execute("SELECT lane FROM crossings WHERE id = ?", [event.crossing_id]).fetchone()
        if row is None or row[0] != event.lane:
            return self._refuse(event, "no such crossing in this lane")
        classification = classify_seizure(event.seizure, event.evaded_duties_eur,
                                          core.config.policy.seizure_criminal_threshold_eur)
        body = {**event.model_dump(mode="json", exclude={"kind", "source"}), "classification": classification}
        core.store.db["control_acts"].insert({
            "id": event.id, "crossing_id": event.crossing_id, "lane": event.lane, "result": event.result,
            "user": event.user, "at": _iso(event.at), "body": json.dumps(body, ensure_ascii=False),
        })
        core.store.outbox_append("control_act", {**body, "site": core.config.site.id}, event.at)
        core.counters[f"control_acts_{event.result}"] += 1
        log.info("control_act_recorded lane=%s crossing=%s result=%s classification=%s user=%s",
                 event.lane, event.crossing_id, event.result, classification, event.user)
        return []

    # ------------------------------------------------------------------ re-channel

    def rechannel_requested(self, event: RechannelRequested) -> list:
        core = self.core
        lane = core.lanes.get(event.lane)
        if lane is None or lane.crossing_id != event.crossing_id:
            return self._refuse(event, "the truck is no longer in the lane")
        refusal = raise_refusal(lane.channel, event.channel, core.config.policy)
        row = {
            "id": event.id, "crossing_id": event.crossing_id, "lane": event.lane,
            "from_channel": lane.channel, "to_channel": event.channel, "requested_by": event.user,
            "reason": event.reason, "requested_at": _iso(event.at), "head_by": "", "head_at": "",
            "analyst_by": "", "analyst_at": "", "status": "refused" if refusal else "pending",
            "outcome": refusal, "decided_at": _iso(event.at) if refusal else "",
        }
        core.store.save_rechannel(row)
        if refusal:
            return self._refuse(event, refusal)
        log.info("rechannel_requested lane=%s crossing=%s from=%s to=%s user=%s",
                 event.lane, event.crossing_id, lane.channel or "-", event.channel, event.user)
        return []

    def rechannel_decided(self, event: RechannelDecided) -> list:
        core = self.core
        row = core.store.rechannel(event.request_id)
        if row is None or row["status"] != "pending":
            return self._refuse(event, "no pending request with this id")
        if event.user == row["requested_by"]:
            return self._refuse(event, "the requester cannot approve their own request")
        prefix = "head" if event.role == "head_of_office" else "analyst"
        if row[f"{prefix}_by"]:
            return self._refuse(event, f"already decided by {row[f'{prefix}_by']}")
        row = {**row, f"{prefix}_by": event.user, f"{prefix}_at": _iso(event.at)}
        commands: list = []
        if event.decision == "refuse":
            row.update(status="refused", outcome=f"refused by {event.user}: {event.reason}", decided_at=_iso(event.at))
        elif row["head_by"] and row["analyst_by"]:
            lane, commands, why = raise_channel(core.lanes[row["lane"]], row["crossing_id"], row["to_channel"],
                                                core.config.policy, core.clock())
            row.update(decided_at=_iso(event.at))
            if why:
                row.update(status="not_applied", outcome=why)
            else:
                core.lanes[row["lane"]] = lane
                core.store.set_crossing_channel(row["crossing_id"], row["to_channel"])
                row.update(status="applied", outcome="")
                core.store.outbox_append("rechannel", {
                    "site": core.config.site.id, "crossing": row["crossing_id"], "lane": row["lane"],
                    "from_channel": row["from_channel"], "to_channel": row["to_channel"],
                    "requested_by": row["requested_by"], "reason": row["reason"],
                    "head_of_office": row["head_by"], "local_risk_analyst": row["analyst_by"],
                }, event.at)
        core.store.save_rechannel(row)
        core.counters[f"rechannel_{row['status']}"] += 1
        log.info("rechannel_decided request=%s role=%s decision=%s status=%s outcome=%s",
                 event.request_id, event.role, event.decision, row["status"], row["outcome"] or "-")
        return commands

    # ------------------------------------------------------------------ local profiles

    def local_indicator_saved(self, event: LocalIndicatorSaved) -> list:
        from edge_agent.errors import IndicatorError
        from edge_agent.local_rules import IndicatorSet, load_indicator_set
        from edge_agent.local_rules.indicators import site_indicator_files

        core = self.core
        config = core.config
        folder = core.store.path.parent / "indicators"  # the agent's data directory
        path = folder / LOCAL_FILE
        try:
            doc, raw = updated_local_set(path, event.indicator, config.site.id, event.user, event.at)
            channels = [c.code for c in config.policy.channels]
            local = load_indicator_set(doc, channels=channels)
            others = [p for p in site_indicator_files(config.rules.indicator_files, folder.parent) if p != path]
            rules = IndicatorSet.merge(*(load_indicator_set(p) for p in others), local)
        except (IndicatorError, OSError, ValueError) as err:
            return self._refuse(event, str(err))
        folder.mkdir(parents=True, exist_ok=True)
        replace_file(path, json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8"))
        if getattr(core.assessor, "reloader", None) is not None:
            core.assessor.reload()  # with the RAU's bundles and the site scope, as at start
        elif getattr(core.assessor, "replace", None) is not None:
            core.assessor.replace(rules)
        core.store.outbox_append("local_indicator", {
            "site": config.site.id, "indicator": raw, "set_version": doc["version"], "user": event.user,
            "reason": event.reason}, event.at)
        log.info("local_indicator_saved id=%s version=%s user=%s set=%s", raw.get("id"), raw.get("version"),
                 event.user, doc["version"])
        return []

    # ------------------------------------------------------------------ audit anchors

    def audit_anchored(self, event: AuditAnchored) -> list:
        # The event row itself is the local anchor (`audit verify` reads it); the outbox
        # row puts a copy where cutting both files on this board cannot reach.
        self.core.store.outbox_append("audit_anchor", {"site": self.core.config.site.id, "seq": event.seq,
                                                       "hash": event.hash, "at": _iso(event.at)}, event.at)
        return []

    # ------------------------------------------------------------------ plumbing

    def _refuse(self, event: Any, reason: str) -> list:
        self.core.counters[f"console_refused_{event.kind}"] += 1
        log.warning("console_event_refused kind=%s id=%s reason=%s", event.kind, event.id, reason)
        return []


def updated_local_set(path: Path, indicator: dict[str, Any], site: str, user: str,
                      at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The local set document with `indicator` added, or replacing its id at version + 1."""
    doc: dict[str, Any] = {"format": "bcp-indicators/1", "version": "", "lists": {}, "indicators": []}
    if path.exists():
        doc = json.loads(path.read_text(encoding="utf-8"))
    raw = {**indicator, "level": "local", "author": indicator.get("author") or user, "owner": site}
    previous = [i for i in doc.get("indicators", []) if i.get("id") == raw.get("id")]
    raw["version"] = max(int(i.get("version", 1)) for i in previous) + 1 if previous else 1
    doc["indicators"] = [i for i in doc.get("indicators", []) if i.get("id") != raw.get("id")] + [raw]
    doc["version"] = f"local-{site}-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    doc["issued_at"] = at.astimezone(UTC).isoformat()
    return doc, raw


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")

