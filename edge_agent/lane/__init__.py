"""A lane's truck, as pure transitions: what happens to the lane, and what it asks for.

session.py     the lane session state machine: `step(lane, event, now, ...)` and
               `apply_assessment`, one truck at a time; `interrupted_lane`, a crossing
               a crash cut, rebuilt from its stored row
rechannel.py   raising a crossing's channel (approved re-channel, RAU raise):
               `raise_refusal`, `raise_channel`, `higher_channels`

Nothing here reads a clock, a database or a device: the core loop passes the time and
a plate lookup in, and carries the returned commands out.
"""

from edge_agent.lane.rechannel import RAISABLE, higher_channels, raise_channel, raise_refusal
from edge_agent.lane.session import (
    DECIDED,
    WAITING,
    CrossingEnded,
    EventRefused,
    LaneState,
    Lookup,
    Phase,
    Plate,
    RequestAssessment,
    apply_assessment,
    interrupted_lane,
    no_lookup,
    step,
    with_plate,
)

__all__ = [
    "DECIDED",
    "RAISABLE",
    "WAITING",
    "CrossingEnded",
    "EventRefused",
    "LaneState",
    "Lookup",
    "Phase",
    "Plate",
    "RequestAssessment",
    "apply_assessment",
    "higher_channels",
    "interrupted_lane",
    "no_lookup",
    "raise_channel",
    "raise_refusal",
    "step",
    "with_plate",
]
