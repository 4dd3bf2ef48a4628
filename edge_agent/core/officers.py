"""The officers' decisions, applied by the core: control acts, re-channel requests, holds.

The console turns forms into these events (models.ControlActRecorded,
RechannelRequested, RechannelDecided); here they become records, outbox rows and lane
changes, in the event's transaction. A raise takes effect only once the head of office
and the local risk analyst have both approved (docs/console.md, "Users
and roles"), and only upward (lane.rechannel).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from edge_agent.commands import Command
from edge_agent.core.context import CoreContext, Handler, refuse
from edge_agent.lane import raise_channel, raise_refusal
from edge_agent.models import ControlActRecorded, EventBase, HoldChanged, RechannelDecided, RechannelRequested
from edge_agent.store import iso

log = logging.getLogger(__name__)


def classify_seizure(seizure: bool, evaded_duties_eur: float, criminal_threshold_eur: float) -> str:
    """none, offence (below the threshold) or criminal_report (at or above it)."""
    if not seizure:
        return "none"
    return "criminal_report" if evaded_duties_eur >= criminal_threshold_eur else "offence"


def control_act(core: CoreContext, event: ControlActRecorded) -> list[Command]:
    if core.store.crossing_lane(event.crossing_id) != event.lane:
        return refuse(core, event, "no such crossing in this lane")
    classification = classify_seizure(event.seizure, event.evaded_duties_eur,
                                      core.config.policy.seizure_criminal_threshold_eur)
    body = {**event.model_dump(mode="json", exclude={"kind", "source"}), "classification": classification}
    core.store.record_control_act({
        "id": event.id, "crossing_id": event.crossing_id, "lane": event.lane, "result": event.result,
        "user": event.user, "at": iso(event.at), "body": json.dumps(body, ensure_ascii=False),
    })
    core.store.outbox_append("control_act", {**body, "site": core.config.site.id}, event.at)
    lane = core.lanes.get(event.lane)
    if lane is not None and lane.crossing_id == event.crossing_id:
        core.lanes[event.lane] = replace(lane, control_act=event.id)  # the truck may now be released
    core.counters[f"control_acts_{event.result}"] += 1
    log.info("control_act_recorded lane=%s crossing=%s result=%s classification=%s user=%s",
             event.lane, event.crossing_id, event.result, classification, event.user)
    return []


def rechannel_requested(core: CoreContext, event: RechannelRequested) -> list[Command]:
    lane = core.lanes.get(event.lane)
    if lane is None or lane.crossing_id != event.crossing_id:
        return refuse(core, event, "the truck is no longer in the lane")
    refusal = raise_refusal(lane.channel, event.channel, core.config.policy)
    core.store.save_rechannel({
        "id": event.id, "crossing_id": event.crossing_id, "lane": event.lane,
        "from_channel": lane.channel, "to_channel": event.channel, "requested_by": event.user,
        "reason": event.reason, "requested_at": iso(event.at), "head_by": "", "head_at": "",
        "analyst_by": "", "analyst_at": "", "status": "refused" if refusal else "pending",
        "outcome": refusal, "decided_at": iso(event.at) if refusal else "",
    })
    if refusal:
        return refuse(core, event, refusal)
    log.info("rechannel_requested lane=%s crossing=%s from=%s to=%s user=%s",
             event.lane, event.crossing_id, lane.channel or "-", event.channel, event.user)
    return []


def rechannel_decided(core: CoreContext, event: RechannelDecided) -> list[Command]:
    row = core.store.rechannel(event.request_id)
    if row is None or row["status"] != "pending":
        return refuse(core, event, "no pending request with this id")
    if event.user == row["requested_by"]:
        return refuse(core, event, "the requester cannot approve their own request")
    prefix = "head" if event.role == "head_of_office" else "analyst"
    if row[f"{prefix}_by"]:
        return refuse(core, event, f"already decided by {row[f'{prefix}_by']}")
    row = {**row, f"{prefix}_by": event.user, f"{prefix}_at": iso(event.at)}
    commands: list[Command] = []
    if event.decision == "refuse":
        row.update(status="refused", outcome=f"refused by {event.user}: {event.reason}", decided_at=iso(event.at))
    elif row["head_by"] and row["analyst_by"]:
        lane, commands, why = raise_channel(core.lanes[row["lane"]], row["crossing_id"], row["to_channel"],
                                            core.config.policy, core.clock())
        row.update(decided_at=iso(event.at))
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


def hold_changed(core: CoreContext, event: HoldChanged) -> list[Command]:
    if core.store.crossing_lane(event.crossing_id) is None:
        return refuse(core, event, "no such crossing")
    if event.action == "release":
        if not core.store.on_hold(event.crossing_id):
            return refuse(core, event, "the crossing is not on hold")
        core.store.release_hold(event.crossing_id, event.user, event.reason, event.at)
    else:
        core.store.place_hold(event.crossing_id, event.user, event.reason, event.at)
    log.info("hold_changed crossing=%s action=%s by=%s", event.crossing_id, event.action, event.user)
    return []


HANDLERS: dict[type[EventBase], Handler] = {
    ControlActRecorded: control_act,
    RechannelRequested: rechannel_requested,
    RechannelDecided: rechannel_decided,
    HoldChanged: hold_changed,
}
