"""Holds reach the database only through the core: placed, released, and refused when
there is nothing to release or no such crossing."""

from __future__ import annotations

from testkit.core_rig import cross, truck

from edge_agent.models import HoldChanged, PreArrivalReceived


def test_a_hold_is_placed_and_released_and_a_bad_release_refused(core):
    core.post(PreArrivalReceived(record=truck()))
    crossing = cross(core).crossing_id
    core.post(HoldChanged(crossing_id=crossing, action="release", user="hana", reason="nothing held yet"))
    core.post(HoldChanged(crossing_id="01NOSUCH", action="hold", user="hana", reason="typo"))
    core.drain()
    assert core.counters["refused_hold_changed"] == 2
    assert core.store.holds() == []
    core.post(HoldChanged(crossing_id=crossing, action="hold", user="hana", reason="case 24/117"))
    core.drain()
    assert core.store.on_hold(crossing)
    core.post(HoldChanged(crossing_id=crossing, action="release", user="hana", reason="case closed"))
    core.drain()
    assert not core.store.on_hold(crossing)
    assert core.store.hold_of(crossing)["released_reason"] == "case closed"
