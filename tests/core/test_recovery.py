"""After a crash: every crossing left open is ended as interrupted and reported, and a
truck found standing on the loops at start is a new crossing the officer is asked about."""

from __future__ import annotations

import json

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from testkit import console_rig as rig
from testkit import waiting
from testkit.core_rig import Clock, cross, truck

from edge_agent.commands import NotifyOfficer, OpenBarrier
from edge_agent.core import Core
from edge_agent.lane import Phase
from edge_agent.models import PreArrivalReceived, TruckFoundAtStart, VehicleLeft
from edge_agent.store import Store


def restart(core: Core, tmp_path) -> Core:
    """A second core on the same database, as after kill -9: nothing was ended on the way down."""
    return Core(core.config, Store.open(tmp_path / "agent.db"), core.assessor, clock=Clock())


def outbox(store: Store, stream: str) -> list[dict]:
    return [json.loads(r["payload"]) for r in store.db.query("SELECT payload FROM outbox WHERE stream = ?", [stream])]


def test_crossings_cut_by_a_crash_are_ended_interrupted_with_their_phase_and_hits(core, tmp_path):
    core.post(PreArrivalReceived(record=truck(gross_kg=20000)))
    held = cross(core, weight=26000)  # overweight: held, with a hit queued for the RAU
    assert held.phase is Phase.HELD and core.store.hits_for(held.crossing_id)
    core.post(PreArrivalReceived(record=truck(reference="XK26EX200", plate="BG555XY")))
    released = cross(core, plate="BG555XY", lane="L2")
    assert released.phase is Phase.RELEASED
    assert {r["id"] for r in core.store.open_crossings()} == {held.crossing_id, released.crossing_id}

    again = restart(core, tmp_path)
    assert again.recover_interrupted() == 2
    rows = {r["id"]: r for r in again.store.crossings()}
    assert rows[held.crossing_id]["outcome"] == "interrupted" and rows[held.crossing_id]["ended_at"]
    assert rows[released.crossing_id]["outcome"] == "interrupted"
    reported = {p["crossing"]: p for p in outbox(again.store, "crossing")}
    assert reported[held.crossing_id]["phase"] == "held" and reported[held.crossing_id]["hits"]
    assert reported[held.crossing_id]["channel"] == held.channel
    assert reported[released.crossing_id]["phase"] == "released"
    # What the cut crossings had decided is kept.
    assert again.store.hits_for(held.crossing_id) and again.store.latest_assessment(released.crossing_id)
    assert again.store.open_crossings() == [] and again.recover_interrupted() == 0
    assert again.lanes["L1"].phase is Phase.IDLE and again.counters["crossings_interrupted"] == 2


def test_a_crossing_that_ended_before_the_crash_is_left_alone(core, tmp_path):
    core.post(PreArrivalReceived(record=truck()))
    lane = cross(core)
    assert lane.phase is Phase.RELEASED
    core.post(VehicleLeft(lane="L1"))
    core.drain()
    again = restart(core, tmp_path)
    assert again.recover_interrupted() == 0
    assert [r["outcome"] for r in again.store.crossings() if r["id"] == lane.crossing_id] == ["cleared"]


def test_a_truck_on_the_loops_at_start_is_a_new_crossing_for_the_officer_not_a_guess(core):
    core.post(TruckFoundAtStart(lane="L1", loops=["on_scale"]))
    core.drain()
    lane = core.lanes["L1"]
    assert lane.phase is Phase.IDENTIFYING and lane.crossing_id
    assert "truck found on on_scale when the agent started" in lane.notes
    notified = waiting.wait_for(lambda: [c for c in core.recorder.commands if isinstance(c, NotifyOfficer)], 5,
                                what="the officer notified")
    assert "when the agent started" in notified[0].message
    assert not any(isinstance(c, OpenBarrier) for c in core.recorder.commands)
    core.post(TruckFoundAtStart(lane="L1", loops=["on_scale"]))  # a lane already busy is not restarted
    core.drain()
    assert core.lanes["L1"].crossing_id == lane.crossing_id


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


class DetectorHoldsHigh(MockPin):
    """An input whose loop detector drives the line high whatever the pull resistor says:
    a truck already standing on the loop when the agent opens the pin."""

    def _set_pull(self, value):
        super()._set_pull(value)
        self.drive_high()


def test_the_agent_reports_a_truck_standing_on_its_loops_when_it_starts(tmp_path, factory):
    factory.pin("GPIO6", pin_class=DetectorHoldsHigh)  # L1's on-scale loop: a truck on the weighbridge
    bench = rig.LaneBench(rig.site_config(tmp_path), pin_factory=factory, data_dir=tmp_path).start()
    try:
        state = rig.wait_for(lambda: (s := bench.core.snapshot()["L1"])["crossing"] and s, "a crossing on L1")
        assert state["phase"] == "identifying" and not bench.core.snapshot()["L2"]["crossing"]
        assert bench.gates["L1"].state()["barrier"] != "open"
    finally:
        bench.stop()


def test_the_agent_ends_what_a_crash_cut_before_it_takes_new_events(tmp_path, factory):
    first = rig.LaneBench(rig.site_config(tmp_path), pin_factory=factory, data_dir=tmp_path).start()
    snap = rig.drive_in(first, "L1", rig.tobacco_record(), "KS123AB", 24100)
    first.stop()  # a stop ends no crossing, as a crash would not
    assert snap["crossing"] in {r["id"] for r in Store.reader(tmp_path / "agent.db").open_crossings()}

    second = rig.LaneBench(rig.site_config(tmp_path), pin_factory=MockFactory(), data_dir=tmp_path).start()
    try:
        row = next(r for r in second.metrics_store.crossings() if r["id"] == snap["crossing"])
        assert row["outcome"] == "interrupted" and row["phase"] == "held"
        assert second.core.counters["crossings_interrupted"] == 1
    finally:
        second.stop()
