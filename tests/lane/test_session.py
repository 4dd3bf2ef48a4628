"""The lane state machine, driven with plain values: no threads, clocks or devices."""

from dataclasses import replace

from edge_agent.commands import Alarm, CloseBarrier, NotifyOfficer, OpenBarrier, SaveEvidence, ShowSign
from edge_agent.config import PolicyConfig, TimeoutsConfig
from edge_agent.lane import (
    CrossingEnded,
    EventRefused,
    LaneState,
    Phase,
    RequestAssessment,
    apply_assessment,
    step,
)
from edge_agent.models import (
    Assessment,
    ControlCompleted,
    Hit,
    ManualPlate,
    ManualRelease,
    PlateRead,
    PlateRole,
    ScaleEmptied,
    Tick,
    VehicleDetected,
    VehicleLeft,
    WeightStable,
)
from edge_agent.plates.association import PlateMatch

T = TimeoutsConfig(plate_s=30, weight_s=60, trailer_s=5, officer_s=300, exit_s=90)
POLICY = PolicyConfig()
RECORDS = {
    "KS01123AB": PlateMatch(reference="REF-1", role=PlateRole.TRACTOR, expects_trailer=True),
    "KS01999TR": PlateMatch(reference="REF-1", role=PlateRole.TRAILER),
    "BG123AA": PlateMatch(reference="REF-2", role=PlateRole.TRACTOR),
}


def lookup(text):
    return RECORDS.get(text)


def kinds(commands):
    return [type(c).__name__ for c in commands]


def run(events, lane=None, start=0.0):
    """Feed (time, event) pairs; return the final lane and every command in order."""
    lane = lane or LaneState(lane_id="L1")
    out = []
    for now, event in events:
        lane, cmds = step(lane, event, start + now, T, lookup)
        out += cmds
    return lane, out


def assessment(lane, channel, hits=()):
    return Assessment(crossing_id=lane.crossing_id, lane=lane.lane_id, channel=channel, hits=list(hits))


def test_green_truck_is_released_and_the_crossing_ends_when_it_leaves():
    lane, cmds = run([
        (0, VehicleDetected(lane="L1")),
        (1, PlateRead(lane="L1", text="BG123AA", role=PlateRole.TRACTOR, confidence=0.9)),
        (4, WeightStable(lane="L1", gross_kg=24000)),
    ])
    assert lane.phase is Phase.IDENTIFYING
    assert isinstance(cmds[-1], RequestAssessment)
    assert lane.reference == "REF-2"
    lane, cmds = apply_assessment(lane, assessment(lane, "green"), 5, POLICY)
    assert lane.phase is Phase.RELEASED
    assert [type(c) for c in cmds] == [SaveEvidence, ShowSign, OpenBarrier]
    crossing = lane.crossing_id
    lane, cmds = step(lane, VehicleLeft(lane="L1", direction="forward"), 20, T, lookup)
    assert lane.phase is Phase.IDLE and lane.crossing_id == ""
    assert isinstance(cmds[0], CloseBarrier)
    assert cmds[-1] == CrossingEnded(lane="L1", crossing_id=crossing, outcome="cleared")


def test_red_truck_is_held_until_the_officer_completes_the_control():
    lane, _ = run([
        (0, VehicleDetected(lane="L1")),
        (1, PlateRead(lane="L1", text="BG123AA")),
        (2, WeightStable(lane="L1", gross_kg=30000)),
    ])
    hit = Hit(indicator_id="C-1", channel="red", instructions="inspect")
    lane, cmds = apply_assessment(lane, assessment(lane, "red", [hit]), 3, POLICY)
    assert lane.phase is Phase.HELD
    assert not any(isinstance(c, OpenBarrier) for c in cmds)
    assert ShowSign(lane="L1", crossing_id=lane.crossing_id, sign="inspection") in cmds
    assert any(isinstance(c, Alarm) for c in cmds)
    # A camera re-reading the truck while it waits changes nothing.
    same, none = step(lane, PlateRead(lane="L1", text="XX999XX"), 4, T, lookup)
    assert same == lane and none == []
    # Completing the control releases only once its control act is recorded ...
    held = lane
    lane, cmds = step(held, ControlCompleted(lane="L1", user="officer1"), 100, T, lookup)
    assert lane.phase is Phase.HELD and not any(isinstance(c, OpenBarrier) for c in cmds)
    assert [c.reason for c in cmds if isinstance(c, EventRefused)] == [
        "record the control act first, or say why no control was performed"]
    lane, cmds = step(replace(held, control_act="ACT-1"), ControlCompleted(lane="L1", user="officer1"), 100, T,
                      lookup)
    assert lane.phase is Phase.RELEASED and lane.control_act == "ACT-1" and lane.no_control_reason == ""
    assert any(isinstance(c, OpenBarrier) for c in cmds)
    # ... or with the officer's reason for performing none, which the crossing carries.
    lane, cmds = step(held, ControlCompleted(lane="L1", user="officer1", no_control_reason="inspection bay closed"),
                      100, T, lookup)
    assert lane.phase is Phase.RELEASED and lane.no_control_reason == "inspection bay closed"
    # A manual release of a held truck is that explicit reason.
    lane, _ = step(held, ManualRelease(lane="L1", user="head1", reason="diplomatic convoy"), 100, T, lookup)
    assert lane.phase is Phase.RELEASED and lane.no_control_reason == "diplomatic convoy"


def test_weight_before_plate_and_plate_before_loop_still_make_one_crossing():
    lane, cmds = run([
        (0, WeightStable(lane="L1", gross_kg=24000)),
        (1, VehicleDetected(lane="L1")),
        (2, PlateRead(lane="L1", text="BG123AA")),
    ])
    assert lane.phase is Phase.IDENTIFYING
    assert lane.weight_kg == 24000
    assert sum(isinstance(c, RequestAssessment) for c in cmds) == 1
    # A plate alone opens the crossing too.
    lane, cmds = run([(0, PlateRead(lane="L1", text="BG123AA"))])
    assert lane.phase is Phase.IDENTIFYING and lane.tractor.text == "BG123AA"


def test_a_declared_trailer_is_waited_for_then_assessment_goes_ahead_without_it():
    lane, cmds = run([
        (0, VehicleDetected(lane="L1")),
        (1, PlateRead(lane="L1", text="KS01123AB")),
        (2, WeightStable(lane="L1", gross_kg=38000)),
    ])
    assert not any(isinstance(c, RequestAssessment) for c in cmds)
    lane, cmds = step(lane, Tick(), 4, T, lookup)
    assert cmds == []
    lane, cmds = step(lane, Tick(), 7.5, T, lookup)
    assert kinds(cmds) == ["RequestAssessment"]


def test_a_trailer_read_completes_the_truck_without_waiting():
    lane, cmds = run([
        (0, VehicleDetected(lane="L1")),
        (1, PlateRead(lane="L1", text="KS01123AB")),
        (2, WeightStable(lane="L1", gross_kg=38000)),
        (2.5, PlateRead(lane="L1", text="KS01999TR")),
    ])
    assert lane.trailer.text == "KS01999TR" and lane.trailer.match.role is PlateRole.TRAILER
    assert kinds(cmds).count("RequestAssessment") == 1


def test_no_plate_timeout_asks_the_officer_and_a_manual_plate_resumes():
    lane, cmds = run([(0, VehicleDetected(lane="L1")), (10, WeightStable(lane="L1", gross_kg=20000))])
    lane, cmds = step(lane, Tick(), 29, T, lookup)
    assert lane.phase is Phase.IDENTIFYING
    lane, cmds = step(lane, Tick(), 31, T, lookup)
    assert lane.phase is Phase.NO_PLATE
    assert any(isinstance(c, NotifyOfficer) for c in cmds)
    lane, cmds = step(lane, ManualPlate(lane="L1", text="BG123AA", user="o1", reason="camera dirty"), 40, T, lookup)
    assert lane.tractor.source == "manual:o1"
    assert kinds(cmds)[-1] == "RequestAssessment"


def test_no_weight_timeout_is_explicit_and_a_late_weight_resumes():
    lane, _ = run([(0, VehicleDetected(lane="L1")), (1, PlateRead(lane="L1", text="BG123AA"))])
    lane, cmds = step(lane, Tick(), 61, T, lookup)
    assert lane.phase is Phase.NO_WEIGHT
    assert any(isinstance(c, Alarm) for c in cmds)
    lane, cmds = step(lane, WeightStable(lane="L1", gross_kg=18000), 70, T, lookup)
    assert lane.phase is Phase.IDENTIFYING
    assert kinds(cmds)[-1] == "RequestAssessment"


def test_officer_absent_and_truck_not_leaving_are_explicit_states():
    lane, _ = run([(0, PlateRead(lane="L1", text="BG123AA")), (1, WeightStable(lane="L1", gross_kg=1))])
    lane, _ = apply_assessment(lane, assessment(lane, "yellow"), 2, POLICY)
    lane, cmds = step(lane, Tick(), 303, T, lookup)
    assert lane.phase is Phase.OFFICER_ABSENT and kinds(cmds) == ["Alarm"]
    lane, cmds = step(lane, ManualRelease(lane="L1", user="head", reason="documents checked at booth"), 310, T, lookup)
    assert lane.phase is Phase.RELEASED and "documents checked" in lane.released_by
    lane, cmds = step(lane, Tick(), 401, T, lookup)
    assert lane.phase is Phase.NOT_LEFT
    assert kinds(cmds) == ["CloseBarrier", "Alarm"]


def test_reversing_off_the_scale_discards_the_weight():
    lane, cmds = run([
        (0, VehicleDetected(lane="L1")),
        (1, WeightStable(lane="L1", gross_kg=12000)),
        (2, ScaleEmptied(lane="L1")),
        (3, PlateRead(lane="L1", text="BG123AA")),
    ])
    assert lane.weight_kg is None
    assert "RequestAssessment" not in kinds(cmds)
    lane, cmds = step(lane, WeightStable(lane="L1", gross_kg=24000), 5, T, lookup)
    assert kinds(cmds)[-1] == "RequestAssessment" and lane.weight_kg == 24000


def test_reversing_out_of_the_lane_ends_the_crossing_with_the_barrier_shut():
    lane, _ = run([(0, VehicleDetected(lane="L1")), (1, PlateRead(lane="L1", text="BG123AA"))])
    crossing = lane.crossing_id
    lane, cmds = step(lane, VehicleLeft(lane="L1", direction="reverse"), 5, T, lookup)
    assert lane.phase is Phase.IDLE
    assert not any(isinstance(c, OpenBarrier) for c in cmds)
    assert cmds[-1] == CrossingEnded(lane="L1", crossing_id=crossing, outcome="reversed")


def test_a_truck_leaving_forward_without_release_raises_an_alarm():
    lane, _ = run([(0, VehicleDetected(lane="L1"))])
    lane, cmds = step(lane, VehicleLeft(lane="L1"), 5, T, lookup)
    assert any(isinstance(c, Alarm) for c in cmds)
    assert cmds[-1].outcome == "left_unreleased"


def test_a_plate_correction_while_held_reassesses_but_never_lowers_the_channel():
    lane, _ = run([(0, PlateRead(lane="L1", text="BG123AB")), (1, WeightStable(lane="L1", gross_kg=24000))])
    lane, _ = apply_assessment(lane, assessment(lane, "red"), 2, POLICY)
    lane, cmds = step(lane, ManualPlate(lane="L1", text="BG123AA", user="o1", reason="misread B for A"), 3, T, lookup)
    assert kinds(cmds) == ["RequestAssessment"]
    assert lane.tractor.text == "BG123AA" and lane.tractor.raw == "BG123AA"
    lane, cmds = apply_assessment(lane, assessment(lane, "green"), 4, POLICY)
    assert lane.channel == "red" and lane.phase is Phase.HELD
    assert not any(isinstance(c, OpenBarrier) for c in cmds)


def test_refused_entry_waits_for_the_truck_to_turn_back():
    lane, _ = run([(0, PlateRead(lane="L1", text="BG123AA")), (1, WeightStable(lane="L1", gross_kg=24000))])
    lane, _ = apply_assessment(lane, assessment(lane, "red"), 2, POLICY)
    lane, cmds = step(lane, ControlCompleted(lane="L1", user="o1", outcome="refuse", reason="no permit"), 3, T, lookup)
    assert lane.phase is Phase.REFUSED and kinds(cmds) == ["ShowSign"]
    lane, cmds = step(lane, VehicleLeft(lane="L1", direction="reverse"), 9, T, lookup)
    assert cmds[-1].outcome == "refused"


def test_a_retriggered_arrival_loop_does_not_start_a_second_crossing():
    lane, _ = run([(0, VehicleDetected(lane="L1"))])
    again, cmds = step(lane, VehicleDetected(lane="L1"), 1, T, lookup)
    assert again == lane and cmds == []


def test_unknown_plates_take_tractor_then_trailer_and_duplicates_are_ignored():
    lane, _ = run([
        (0, PlateRead(lane="L1", text="AA111AA")),
        (1, PlateRead(lane="L1", text="AA111AA")),
        (2, PlateRead(lane="L1", text="TR222TR")),
    ])
    assert lane.tractor.text == "AA111AA" and lane.trailer.text == "TR222TR"
