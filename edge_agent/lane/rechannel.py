"""Re-channel: raising a crossing's channel after two approvals, as pure functions.

Officers may only raise a channel (towards stricter control, a lower precedence number
in the site's code list), and the raise takes effect only once the head of office and
the local risk analyst have both approved (docs/console.md, "Users and roles").
`raise_channel` is what the core applies to the lane when the second approval arrives.
"""

from __future__ import annotations

from dataclasses import replace

from edge_agent.commands import CloseBarrier, NotifyOfficer, ShowSign
from edge_agent.config import PolicyConfig
from edge_agent.lane.session import LaneState, Phase

# Phases in which the truck is still in the lane and its channel can still matter.
RAISABLE = (Phase.IDENTIFYING, Phase.NO_PLATE, Phase.NO_WEIGHT, Phase.HELD, Phase.OFFICER_ABSENT,
            Phase.RELEASED, Phase.NOT_LEFT)


def raise_refusal(current: str, requested: str, policy: PolicyConfig) -> str:
    """Why `requested` is not a raise from `current` ("" when it is one)."""
    codes = {c.code for c in policy.channels}
    if requested not in codes:
        return f"unknown channel {requested!r}"
    if not current:
        return ""
    if current not in codes:
        return f"the current channel {current!r} is not in the code list"
    if policy.channel(requested).precedence >= policy.channel(current).precedence:
        return f"{requested} is not stricter than {current}: a channel can only be raised"
    return ""


def higher_channels(current: str, policy: PolicyConfig) -> list[str]:
    """The channels an officer may ask for, strictest first."""
    ordered = sorted(policy.channels, key=lambda c: c.precedence)
    return [c.code for c in ordered if not raise_refusal(current, c.code, policy)]


def raise_channel(lane: LaneState, crossing_id: str, channel: str, policy: PolicyConfig,
                  now: float) -> tuple[LaneState, list, str]:
    """Apply an approved raise to the lane: (new lane, commands, "" or why not applied).

    A truck released but still in the lane is stopped again (the barrier permission is
    withdrawn) and sent to the new control; a held truck is redirected. Undecided lanes
    keep the raised channel as a floor: `apply_assessment` never lowers a lane's channel.
    """
    if lane.crossing_id != crossing_id:
        return lane, [], "the truck has left the lane"
    if lane.phase not in RAISABLE:
        return lane, [], f"the lane is {lane.phase.value}"
    refusal = raise_refusal(lane.channel, channel, policy)
    if refusal:
        return lane, [], refusal
    lid, cid = lane.lane_id, lane.crossing_id
    gate = policy.channel(channel).gate
    label = policy.channel(channel).label
    note = f"channel raised to {channel} after approval"
    lane = replace(lane, channel=channel, notes=lane.notes + (note,))
    if lane.phase in (Phase.IDENTIFYING, Phase.NO_PLATE, Phase.NO_WEIGHT) or gate == "release":
        return lane, [NotifyOfficer(lane=lid, crossing_id=cid, message=f"Re-channel approved: {label}")], ""
    cmds: list = []
    if lane.phase in (Phase.RELEASED, Phase.NOT_LEFT):
        cmds.append(CloseBarrier(lane=lid, crossing_id=cid))
    lane = replace(lane, phase=Phase.HELD, since=now)
    cmds += [
        ShowSign(lane=lid, crossing_id=cid, sign=gate),
        NotifyOfficer(lane=lid, crossing_id=cid, message=f"Re-channel approved: {label}"),
    ]
    return lane, cmds, ""
