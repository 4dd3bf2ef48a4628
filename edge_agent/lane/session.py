"""The lane session state machine: one truck at a time, as pure code.

    IDLE ──vehicle/plate/weight──> IDENTIFYING ──plate + stable weight──> (assess)
      ^                              │  │                                   │
      │                   no plate ──┘  └── no stable weight                ├─ release channel ─> RELEASED
      │                   NO_PLATE          NO_WEIGHT                       └─ control channel ─> HELD
      │                   (officer enters     (officer re-weighs or             │ officer absent
      │                    the plate)          releases)                        v
      │                                                                    OFFICER_ABSENT
      └──────── vehicle left (forward after release, or reversed) ─────────────┘

`step(lane, event, now, timeouts, lookup)` returns the next state and the commands
to carry out; assessment is asked for with `RequestAssessment` and its result fed back
with `apply_assessment`, so the rules engine stays a separate pure function. `now` is
a monotonic time in seconds (durations never use the wall clock). `lookup` resolves a
plate to the pre-arrival record it belongs to; it is a pure query over the core's
in-memory index.

Out-of-order input is normal: a plate or a weight may come before the loop detector,
trailer before tractor, a second weighing after a truck reversed off the scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from edge_agent.commands import Alarm, CloseBarrier, Command, NotifyOfficer, OpenBarrier, SaveEvidence, ShowSign
from edge_agent.config import PolicyConfig, TimeoutsConfig
from edge_agent.models import (
    Assessment,
    ControlCompleted,
    ManualPlate,
    ManualRelease,
    PlateRead,
    PlateRole,
    ScaleEmptied,
    Tick,
    TruckFoundAtStart,
    VehicleDetected,
    VehicleLeft,
    WeightStable,
)
from edge_agent.plates.association import PlateMatch


class Phase(StrEnum):
    IDLE = "idle"
    IDENTIFYING = "identifying"
    NO_PLATE = "no_plate"  # timeout: no plate read, an officer must enter it
    NO_WEIGHT = "no_weight"  # timeout: no stable weight
    RELEASED = "released"  # barrier open, waiting for the truck to leave
    HELD = "held"  # directed to documents, inspection or scanner
    OFFICER_ABSENT = "officer_absent"  # timeout: held and nobody acted
    NOT_LEFT = "not_left"  # timeout: released but the truck did not leave
    REFUSED = "refused"  # entry refused, waiting for the truck to turn back


WAITING = (Phase.IDENTIFYING, Phase.NO_PLATE, Phase.NO_WEIGHT)
DECIDED = (Phase.RELEASED, Phase.HELD, Phase.OFFICER_ABSENT, Phase.NOT_LEFT, Phase.REFUSED)


Lookup = Callable[[str], PlateMatch | None]


def no_lookup(_plate: str) -> PlateMatch | None:
    return None


@dataclass(frozen=True)
class Plate:
    text: str
    raw: str
    confidence: float
    source: str  # camera id, or "manual:<user>"
    match: PlateMatch | None = None


@dataclass(frozen=True)
class LaneState:
    lane_id: str
    phase: Phase = Phase.IDLE
    crossing_id: str = ""
    since: float = 0.0  # monotonic time the phase began
    started: float = 0.0  # monotonic time the crossing began
    tractor: Plate | None = None
    trailer: Plate | None = None
    weight_kg: float | None = None
    weight_event: str = ""
    ready_at: float | None = None  # when plate and weight were both first present
    assessment: Assessment | None = None
    channel: str = ""
    released_by: str = ""
    control_act: str = ""  # the control act recorded for this crossing (its id)
    no_control_reason: str = ""  # or why the officer released it without a control
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reference(self) -> str:
        for plate in (self.tractor, self.trailer):
            if plate and plate.match:
                return plate.match.reference
        return ""


@dataclass(frozen=True)
class RequestAssessment:
    """Ask the core to run the rules for this crossing (not an output command)."""

    lane: str
    crossing_id: str
    kind: str = "request_assessment"


@dataclass(frozen=True)
class EventRefused:
    """Marker: the lane did not act on an event, and why (the core logs and counts it)."""

    lane: str
    crossing_id: str
    event_kind: str
    reason: str
    kind: str = "event_refused"


@dataclass(frozen=True)
class CrossingEnded:
    """Marker command: the crossing is over; the core closes its record."""

    lane: str
    crossing_id: str
    outcome: str  # cleared | reversed | refused | left_unreleased | interrupted (at start, after a crash)
    kind: str = "crossing_ended"


LaneCommand = Command | RequestAssessment | CrossingEnded | EventRefused
Transition = tuple[LaneState, list[LaneCommand]]


def step(
    lane: LaneState,
    event: object,
    now: float,
    timeouts: TimeoutsConfig,
    lookup: Lookup = no_lookup,
) -> Transition:
    """Feed one event to the lane; returns the new state and the commands to run."""
    if isinstance(event, Tick):
        return _on_tick(lane, now, timeouts)
    if isinstance(event, VehicleDetected):
        if lane.phase is Phase.IDLE:
            lane = _start(lane, event.id, now)
            return lane, [SaveEvidence(lane=lane.lane_id, crossing_id=lane.crossing_id, moment="arrival")]
        return lane, []  # the loop retriggers while a long truck stands on it
    if isinstance(event, TruckFoundAtStart):
        return _on_found_at_start(lane, event, now)
    if isinstance(event, (PlateRead, ManualPlate)):
        return _on_plate(lane, event, now, timeouts, lookup)
    if isinstance(event, WeightStable):
        return _on_weight(lane, event, now, timeouts)
    if isinstance(event, ScaleEmptied):
        if lane.phase in WAITING and lane.weight_kg is not None:
            # Reversed off the scale before a decision: the old weight no longer describes it.
            return replace(lane, weight_kg=None, weight_event="", ready_at=None), []
        return lane, []
    if isinstance(event, ManualRelease):
        return _on_manual_release(lane, event, now)
    if isinstance(event, ControlCompleted):
        return _on_control(lane, event, now)
    if isinstance(event, VehicleLeft):
        return _on_left(lane, event)
    return lane, []


def apply_assessment(lane: LaneState, assessment: Assessment, now: float, policy: PolicyConfig) -> Transition:
    """Carry out the rules' decision: release, or send the truck to a control."""
    if lane.phase not in WAITING and lane.phase not in (Phase.HELD, Phase.OFFICER_ABSENT):
        return lane, []
    channel = assessment.channel
    if lane.channel and _rank(policy, lane.channel) < _rank(policy, channel):
        # A re-assessment (plate corrected) may raise the channel, never lower it.
        channel = lane.channel
    gate = policy.channel(channel).gate
    lane = replace(lane, assessment=assessment, channel=channel)
    cid, lid = lane.crossing_id, lane.lane_id
    hit = bool(assessment.hits)
    cmds: list[LaneCommand] = [SaveEvidence(lane=lid, crossing_id=cid, moment="decision", hit=hit)]
    if hit:
        cmds.append(Alarm(lane=lid, crossing_id=cid, reason=f"{len(assessment.hits)} risk hit(s), channel {channel}"))
    if gate == "release":
        lane = replace(lane, phase=Phase.RELEASED, since=now, released_by="rules")
        cmds += [ShowSign(lane=lid, crossing_id=cid, sign="exit"),
                 OpenBarrier(lane=lid, crossing_id=cid, reason=channel)]
        return lane, cmds
    lane = replace(lane, phase=Phase.HELD, since=now)
    message = f"{policy.channel(channel).label}: truck {_plate_text(lane)}"
    cmds += [
        ShowSign(lane=lid, crossing_id=cid, sign=gate),
        NotifyOfficer(lane=lid, crossing_id=cid, message=message, instructions=list(assessment.instructions)),
    ]
    return lane, cmds


# --------------------------------------------------------------------------- transitions


def _start(lane: LaneState, crossing_id: str, now: float) -> LaneState:
    return LaneState(lane_id=lane.lane_id, phase=Phase.IDENTIFYING, crossing_id=crossing_id, since=now, started=now)


def _on_found_at_start(lane: LaneState, event: TruckFoundAtStart, now: float) -> Transition:
    """A truck on the loops at start: a new crossing the officer is asked about. What the
    cut crossing had decided is not assumed: the barrier stays closed until this one is."""
    if lane.phase is not Phase.IDLE:
        return lane, []
    lane = _start(lane, event.id, now)
    where = ", ".join(event.loops) or "the loops"
    lane = replace(lane, notes=(f"truck found on {where} when the agent started",))
    return lane, [
        SaveEvidence(lane=lane.lane_id, crossing_id=lane.crossing_id, moment="arrival"),
        NotifyOfficer(lane=lane.lane_id, crossing_id=lane.crossing_id,
                      message=f"A truck stood on {where} when the agent started: check it and its plate; "
                              "the barrier stays closed until it is decided"),
    ]


def _on_plate(lane: LaneState, event: PlateRead | ManualPlate, now: float, timeouts: TimeoutsConfig,
              lookup: Lookup) -> Transition:
    cmds: list[LaneCommand] = []
    if lane.phase is Phase.IDLE:
        lane = _start(lane, event.id, now)
        cmds.append(SaveEvidence(lane=lane.lane_id, crossing_id=lane.crossing_id, moment="arrival"))
    manual = isinstance(event, ManualPlate)
    if not manual and lane.phase not in WAITING:
        return lane, cmds  # a camera re-reading a truck already decided changes nothing
    if manual and lane.phase in (Phase.RELEASED, Phase.NOT_LEFT, Phase.REFUSED):
        return lane, cmds
    if isinstance(event, ManualPlate):
        source, raw, confidence = f"manual:{event.user}", event.text, 1.0
    else:
        source, raw, confidence = event.camera or event.source, event.raw or event.text, event.confidence
    plate = Plate(text=event.text, raw=raw, confidence=confidence, source=source, match=lookup(event.text))
    role = _role_for(lane, event.role, plate)
    if role is None:
        return lane, cmds  # the same plate again
    displaced = getattr(lane, role)
    other = "trailer" if role == "tractor" else "tractor"
    if (event.role is PlateRole.UNKNOWN and displaced is not None and displaced.text != plate.text
            and displaced.match is None and getattr(lane, other) is None):
        # An earlier read that matched nothing is the truck's other plate, not noise: it
        # is what checks the new read's declaration (core._corroborate).
        lane = with_plate(lane, other, displaced)
    lane = with_plate(lane, role, plate)
    if manual and lane.phase in (Phase.HELD, Phase.OFFICER_ABSENT):
        # A corrected plate may belong to another declaration: assess again (never lowers).
        return lane, cmds + [RequestAssessment(lane=lane.lane_id, crossing_id=lane.crossing_id)]
    if lane.phase is Phase.NO_PLATE:
        lane = replace(lane, phase=Phase.IDENTIFYING, since=now)
    more_lane, more = _maybe_ready(lane, now, timeouts)
    return more_lane, cmds + more


def with_plate(lane: LaneState, role: str, plate: Plate | None) -> LaneState:
    """The lane with its tractor or trailer plate replaced."""
    return replace(lane, tractor=plate) if role == "tractor" else replace(lane, trailer=plate)


def _role_for(lane: LaneState, declared: PlateRole, plate: Plate) -> str | None:
    if declared is PlateRole.TRACTOR:
        return "tractor"
    if declared is PlateRole.TRAILER:
        return "trailer"
    if plate.match is not None:
        return "trailer" if plate.match.role is PlateRole.TRAILER else "tractor"
    known = {p.text for p in (lane.tractor, lane.trailer) if p}
    if plate.text in known:
        return None
    return "tractor" if lane.tractor is None else "trailer" if lane.trailer is None else None


def _on_weight(lane: LaneState, event: WeightStable, now: float, timeouts: TimeoutsConfig) -> Transition:
    cmds: list = []
    if lane.phase is Phase.IDLE:
        lane = _start(lane, event.id, now)
        cmds.append(SaveEvidence(lane=lane.lane_id, crossing_id=lane.crossing_id, moment="arrival"))
    if lane.phase not in WAITING:
        return lane, cmds
    lane = replace(lane, weight_kg=event.gross_kg, weight_event=event.id)
    cmds.append(SaveEvidence(lane=lane.lane_id, crossing_id=lane.crossing_id, moment="weighed"))
    if lane.phase is Phase.NO_WEIGHT:
        lane = replace(lane, phase=Phase.IDENTIFYING, since=now)
    more_lane, more = _maybe_ready(lane, now, timeouts)
    return more_lane, cmds + more


def _maybe_ready(lane: LaneState, now: float, timeouts: TimeoutsConfig) -> Transition:
    """Ask for an assessment once plate and weight are in, waiting briefly for a trailer."""
    if lane.tractor is None and lane.trailer is None:
        return lane, []
    if lane.weight_kg is None:
        return lane, []
    if lane.ready_at is None:
        lane = replace(lane, ready_at=now)
    waited = now - (lane.ready_at if lane.ready_at is not None else now)
    if _awaiting_trailer(lane) and waited < timeouts.trailer_s:
        return lane, []
    return lane, [RequestAssessment(lane=lane.lane_id, crossing_id=lane.crossing_id)]


def _awaiting_trailer(lane: LaneState) -> bool:
    if lane.trailer is not None:
        return False
    match = lane.tractor.match if lane.tractor else None
    return bool(match and match.expects_trailer)


def _on_tick(lane: LaneState, now: float, timeouts: TimeoutsConfig) -> Transition:
    lid, cid = lane.lane_id, lane.crossing_id
    waited = now - lane.since
    if lane.phase is Phase.IDENTIFYING:
        if lane.ready_at is not None:
            return _maybe_ready(lane, now, timeouts)
        if lane.tractor is None and lane.trailer is None and waited >= timeouts.plate_s:
            lane = replace(lane, phase=Phase.NO_PLATE, since=now)
            return lane, [
                NotifyOfficer(lane=lid, crossing_id=cid, message="No plate read: enter the plate manually"),
                Alarm(lane=lid, crossing_id=cid, reason="no plate read"),
            ]
        if lane.weight_kg is None and now - lane.started >= timeouts.weight_s:
            lane = replace(lane, phase=Phase.NO_WEIGHT, since=now)
            return lane, [
                NotifyOfficer(lane=lid, crossing_id=cid, message="No stable weight: check the truck is on the scale"),
                Alarm(lane=lid, crossing_id=cid, reason="no stable weight"),
            ]
    elif lane.phase is Phase.HELD and waited >= timeouts.officer_s:
        lane = replace(lane, phase=Phase.OFFICER_ABSENT, since=now)
        return lane, [Alarm(lane=lid, crossing_id=cid, reason="held truck waiting for an officer")]
    elif lane.phase is Phase.RELEASED and waited >= timeouts.exit_s:
        lane = replace(lane, phase=Phase.NOT_LEFT, since=now)
        return lane, [
            CloseBarrier(lane=lid, crossing_id=cid),
            Alarm(lane=lid, crossing_id=cid, reason="released truck did not leave"),
        ]
    return lane, []


def _on_manual_release(lane: LaneState, event: ManualRelease, now: float) -> Transition:
    if lane.phase is Phase.IDLE or lane.phase is Phase.RELEASED:
        return lane, []
    lid, cid = lane.lane_id, lane.crossing_id
    held = lane.phase in (Phase.HELD, Phase.OFFICER_ABSENT)
    lane = replace(lane, phase=Phase.RELEASED, since=now, released_by=f"{event.user}: {event.reason}")
    if held and not lane.control_act:
        # A manual release of a held truck is the explicit "no control performed", with its reason.
        lane = replace(lane, no_control_reason=event.reason)
    return lane, [
        ShowSign(lane=lid, crossing_id=cid, sign="exit"),
        OpenBarrier(lane=lid, crossing_id=cid, reason=f"manual release by {event.user}: {event.reason}"),
        SaveEvidence(lane=lid, crossing_id=cid, moment="release"),
    ]


def _on_control(lane: LaneState, event: ControlCompleted, now: float) -> Transition:
    if lane.phase not in (Phase.HELD, Phase.OFFICER_ABSENT):
        return lane, []
    lid, cid = lane.lane_id, lane.crossing_id
    if event.outcome == "refuse":
        lane = replace(lane, phase=Phase.REFUSED, since=now)
        return lane, [ShowSign(lane=lid, crossing_id=cid, sign="back")]
    if not lane.control_act and not event.no_control_reason.strip():
        why = "record the control act first, or say why no control was performed"
        return lane, [EventRefused(lane=lid, crossing_id=cid, event_kind=event.kind, reason=why),
                      NotifyOfficer(lane=lid, crossing_id=cid, message=f"Not released: {why}")]
    lane = replace(lane, phase=Phase.RELEASED, since=now, released_by=f"{event.user}: control completed",
                   no_control_reason="" if lane.control_act else event.no_control_reason.strip())
    return lane, [
        ShowSign(lane=lid, crossing_id=cid, sign="exit"),
        OpenBarrier(lane=lid, crossing_id=cid, reason=f"control completed by {event.user}"),
        SaveEvidence(lane=lid, crossing_id=cid, moment="release"),
    ]


def _on_left(lane: LaneState, event: VehicleLeft) -> Transition:
    if lane.phase is Phase.IDLE:
        return lane, []
    lid, cid = lane.lane_id, lane.crossing_id
    cmds: list[LaneCommand]
    if event.direction == "reverse":
        outcome = "refused" if lane.phase is Phase.REFUSED else "reversed"
        cmds = [ShowSign(lane=lid, crossing_id=cid, sign="none")]
    elif lane.phase in (Phase.RELEASED, Phase.NOT_LEFT):
        outcome = "cleared"
        cmds = [CloseBarrier(lane=lid, crossing_id=cid), ShowSign(lane=lid, crossing_id=cid, sign="none")]
    else:
        outcome = "left_unreleased"
        cmds = [CloseBarrier(lane=lid, crossing_id=cid),
                Alarm(lane=lid, crossing_id=cid, reason="truck left without release")]
    cmds.append(SaveEvidence(lane=lid, crossing_id=cid, moment="end"))
    cmds.append(CrossingEnded(lane=lid, crossing_id=cid, outcome=outcome))
    return LaneState(lane_id=lid), cmds


def interrupted_lane(row: dict, assessment: Assessment | None, control_act: str = "") -> LaneState:
    """The lane a stored, never-ended crossing row describes, as far as the row knows
    (the plates' raw text and who released it lived only in memory)."""
    try:
        phase = Phase(row.get("phase") or "identifying")
    except ValueError:
        phase = Phase.IDENTIFYING

    def plate(text: str, role: str) -> Plate | None:
        return Plate(text=text, raw=text, confidence=0.0, source=f"stored:{role}") if text else None

    return LaneState(lane_id=row["lane"], phase=phase, crossing_id=row["id"],
                     tractor=plate(row.get("tractor_plate") or "", "tractor"),
                     trailer=plate(row.get("trailer_plate") or "", "trailer"),
                     weight_kg=row.get("measured_kg"), assessment=assessment,
                     channel=row.get("channel") or "", control_act=control_act)


def _rank(policy: PolicyConfig, code: str) -> int:
    return policy.channel(code).precedence


def _plate_text(lane: LaneState) -> str:
    parts = [p.text for p in (lane.tractor, lane.trailer) if p]
    return " / ".join(parts) or "(no plate)"
