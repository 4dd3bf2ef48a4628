"""The core loop with the real store, rules engine and plate index (no threads needed:
`drain()` handles what is queued, exactly as the loop's thread would)."""

import json
from datetime import UTC, datetime, timedelta

from testkit.core_rig import cross, truck
from testkit.outputs import Recorder

from edge_agent.commands import OpenBarrier, ShowSign
from edge_agent.lane import Phase
from edge_agent.models import (
    AcksReceived,
    ControlActRecorded,
    ControlCompleted,
    PlateRead,
    PreArrivalReceived,
    Tick,
    VehicleDetected,
    VehicleLeft,
    WeightStable,
)
from edge_agent.store import Store


def test_a_clean_truck_is_stored_assessed_and_released(core):
    core.post(PreArrivalReceived(record=truck()))
    lane = cross(core)
    assert lane.phase is Phase.RELEASED and lane.channel == "green"
    assert lane.reference == "XK26EX100"
    counts = core.store.counts()
    assert counts["events"] == 4 and counts["assessments"] == 1 and counts["hits"] == 0
    kinds = [r["kind"] for r in core.store.commands_for(lane.crossing_id)]
    assert kinds[-2:] == ["show_sign", "open_barrier"]
    core.post(VehicleLeft(lane="L1"))
    core.drain()
    crossing = core.store.crossings()[0]
    assert crossing["outcome"] == "cleared" and crossing["ended_at"]
    outbox = [json.loads(r["payload"]) for r in core.store.db.query("SELECT payload FROM outbox")]
    assert [p["stream"] for p in outbox] == ["crossing"]
    assert outbox[0]["reference"] == "XK26EX100" and outbox[0]["channel"] == "green"


def test_an_overweight_truck_is_held_with_a_hit_queued_for_the_rau(core):
    core.post(PreArrivalReceived(record=truck(gross_kg=20000)))
    lane = cross(core, weight=26000)
    assert lane.phase is Phase.HELD and lane.channel == "red"
    hits = core.store.hits_for(lane.crossing_id)
    assert [h["indicator_id"] for h in hits] == ["C-WEIGHT-10"]
    stream = [r["stream"] for r in core.store.db.query("SELECT stream FROM outbox")]
    assert stream == ["hit"]
    (queued,) = core.store.outbox_payloads("hit")
    assert queued["indicator_id"] == "C-WEIGHT-10" and queued["notify"] == ["rau-duty"]  # the RAU alerts them
    assert not any(isinstance(c, OpenBarrier) for c in _dispatched(core))


def test_an_expired_record_never_matches_and_is_marked_expired_on_the_next_tick(core):
    # Expired before the truck came, and no tick since: the plate index itself refuses it.
    core.post(PreArrivalReceived(record=truck(expires_at=datetime.now(UTC) - timedelta(minutes=1))))
    core.post(PreArrivalReceived(record=truck(reference="XK26EX200", trailer="",
                                              expires_at=datetime.now(UTC) + timedelta(days=1)).model_copy(
                                                  update={"tractor_plate": "BG 555-XY"})))
    lane = cross(core)
    assert lane.reference == "" and lane.channel == "yellow"  # as a truck with no record
    assert core.store.prearrival("XK26EX100") is not None
    assert core.store.pending_prearrival_count() == 2
    core.handle(Tick())
    assert core.store.pending_prearrival_count() == 1  # the expired one is marked; the other waits
    assert "XK26EX100" not in core.plate_index and "XK26EX200" in core.plate_index
    assert core.counters["prearrival_expired"] == 1


def test_a_held_truck_is_released_only_after_its_control_act_or_an_explicit_reason(core):
    core.post(PreArrivalReceived(record=truck(gross_kg=20000)))
    lane = cross(core, weight=26000)
    assert lane.phase is Phase.HELD
    core.post(ControlCompleted(lane="L1", user="olga", reason="done"))
    core.drain()
    assert core.lanes["L1"].phase is Phase.HELD and core.counters["refused_control_completed"] == 1
    act = ControlActRecorded(lane="L1", crossing_id=lane.crossing_id, control_type="physical", result="positive",
                             findings="undeclared pallets", user="olga")
    core.post(act)
    core.post(ControlCompleted(lane="L1", user="olga", reason="done"))
    core.post(VehicleLeft(lane="L1"))
    core.drain()
    (crossing,) = core.store.outbox_payloads("crossing")
    assert crossing["control_act"] == act.id and crossing["no_control_reason"] == ""
    assert crossing["outcome"] == "cleared"


def test_a_misread_plate_is_still_tied_to_its_record(core):
    core.post(PreArrivalReceived(record=truck()))
    lane = cross(core, plate="O1123AB")
    assert lane.reference == "XK26EX100" and lane.channel == "green"


def test_an_unknown_truck_goes_to_documents(core):
    lane = cross(core, plate="BG999ZZ")
    assert lane.channel == "yellow" and lane.phase is Phase.HELD
    assert ShowSign(lane="L1", crossing_id=lane.crossing_id, sign="documents") in _dispatched(core)


def test_bad_input_is_rejected_stored_and_counted_and_the_loop_goes_on(core):
    core.post({"kind": "plate_read", "lane": "L1"}, source="camera-1")
    core.post(b"{not json", source="console")
    core.post({"kind": "launch_missiles", "lane": "L1"}, source="mqtt")
    core.post(PlateRead(lane="L9", text="AB123CD"))
    core.post(PreArrivalReceived(record=truck()))
    core.drain()
    assert core.counters["rejected"] == 4
    rows = list(core.store.db.query("SELECT source, reason FROM rejections ORDER BY id"))
    assert [r["source"] for r in rows][:3] == ["camera-1", "console", "mqtt"]
    assert "text" in rows[0]["reason"] and "unknown lane" in rows[3]["reason"]
    assert core.store.prearrival("XK26EX100") is not None


def test_acknowledged_outbox_rows_are_deleted(core):
    core.post(PreArrivalReceived(record=truck(gross_kg=10000)))
    cross(core, weight=26000)
    ids = [r["id"] for r in core.store.db.query("SELECT id FROM outbox")]
    core.post(AcksReceived(ids=ids))
    core.drain()
    assert core.store.counts()["outbox"] == 0


def test_events_are_committed_before_the_outputs_see_any_command(core, tmp_path):
    seen = []

    class Checker(Recorder):
        def accepts(self, command):
            # The core dispatches after the commit: another connection must see the event.
            reader = Store.reader(tmp_path / "agent.db")
            seen.append(reader.counts()["assessments"])
            reader.close()
            return False

    core.outputs.workers[0].output = Checker()
    core.post(PreArrivalReceived(record=truck()))
    cross(core)
    assert seen and seen[-1] == 1


def test_the_two_lanes_are_independent(core):
    core.post(PreArrivalReceived(record=truck()))
    l1 = cross(core, lane="L1")
    l2 = cross(core, plate="BG999ZZ", lane="L2")
    assert l1.channel == "green" and l2.channel == "yellow"
    assert l1.crossing_id != l2.crossing_id


def _dispatched(core):
    core.outputs.stop()
    return core.recorder.commands


def test_a_failure_inside_an_event_rolls_back_the_lane_and_keeps_the_event_as_a_rejection(core):
    core.post(PreArrivalReceived(record=truck()))
    core.post(VehicleDetected(lane="L1"))
    core.post(PlateRead(lane="L1", text="01123AB", raw="01123AB", confidence=0.93))
    core.drain()
    before = core.lanes["L1"]
    working = core.assessor

    def broken(record, seen, *, now):
        raise RuntimeError("rules engine bug")

    core.assessor = broken
    core.post(WeightStable(lane="L1", gross_kg=24100.0))
    core.drain()
    assert core.lanes["L1"] == before, "the lane must not keep a state the database never got"
    assert core.counters["core_errors"] == 1
    rejected = core.store.db.execute("SELECT reason, raw FROM rejections").fetchall()
    assert len(rejected) == 1 and "rules engine bug" in rejected[0][0] and "24100" in rejected[0][1]
    assert core.store.db.execute("SELECT count(*) FROM events WHERE kind = 'weight_stable'").fetchone()[0] == 0

    core.assessor = working  # the loop goes on: the same weighing again is decided normally
    core.post(WeightStable(lane="L1", gross_kg=24100.0))
    core.drain()
    assert core.lanes["L1"].phase is Phase.RELEASED


def _reads(core, *reads, weight=24100.0, lane="L1"):
    """Plate reads as (text, role) pairs, then the weighing; returns the lane afterwards."""
    from edge_agent.models import PlateRole

    core.post(VehicleDetected(lane=lane))
    for text, role in reads:
        core.post(PlateRead(lane=lane, text=text, raw=text, confidence=0.9, role=PlateRole(role)))
    core.post(WeightStable(lane=lane, gross_kg=weight))
    core.drain()
    return core.lanes[lane]


def test_a_truck_whose_other_plate_contradicts_the_declaration_is_not_tied_to_it(core):
    core.post(PreArrivalReceived(record=truck(trailer="01 456-TR")))
    lane = _reads(core, ("O1123AB", "tractor"), ("BG777ZZ", "trailer"))  # tractor fits, trailer is another
    assert lane.reference == "" and lane.channel == "yellow"
    assert any("BG777ZZ is not the declared trailer 01 456-TR of XK26EX100" in n for n in lane.notes)
    assert core.counters["plate_reads_disagree"] == 1
    assert core.store.prearrival("XK26EX100") is not None
    assert [h["indicator_id"] for h in core.store.hits_for(lane.crossing_id)] == ["C-NO-RECORD"]


def test_both_plates_read_with_errors_still_tie_the_truck_to_its_declaration(core):
    core.post(PreArrivalReceived(record=truck(trailer="01 456-TR")))
    lane = _reads(core, ("O1123A8", "tractor"), ("0l456TR", "trailer"))
    assert lane.reference == "XK26EX100" and lane.channel == "green"
    assert core.counters["plate_reads_disagree"] == 0


def test_two_reads_matching_two_declarations_tie_the_truck_to_neither(core):
    core.post(PreArrivalReceived(record=truck(trailer="01 456-TR")))
    core.post(PreArrivalReceived(record=truck(reference="XK26EX200").model_copy(update={"tractor_plate": "BG 777-ZZ"})))
    lane = _reads(core, ("01123AB", "tractor"), ("BG777ZZ", "trailer"))
    assert lane.reference == "" and any("two declarations" in n for n in lane.notes)


def test_an_unmatched_read_without_a_camera_role_still_checks_the_next_one(core):
    # Reads from cameras with no declared role: the first matches nothing, the second
    # fits the tractor of a declaration whose trailer is not the first read.
    core.post(PreArrivalReceived(record=truck(trailer="01 456-TR")))
    lane = _reads(core, ("KS999XY", "unknown"), ("01123AB", "unknown"))
    assert {lane.tractor.text, lane.trailer.text} == {"01123AB", "KS999XY"}
    assert lane.reference == "" and core.counters["plate_reads_disagree"] == 1
