"""Re-channel as pure functions: only raising, and what a raise does to each lane phase."""

from __future__ import annotations

from edge_agent.commands import CloseBarrier, ShowSign
from edge_agent.config import PolicyConfig
from edge_agent.lane import LaneState, Phase, higher_channels, raise_channel, raise_refusal

POLICY = PolicyConfig(random_secret="test-secret-123")


def test_only_stricter_channels_are_a_raise():
    assert raise_refusal("green", "red", POLICY) == ""
    assert raise_refusal("yellow", "orange", POLICY) == ""
    assert "only be raised" in raise_refusal("red", "yellow", POLICY)
    assert "only be raised" in raise_refusal("yellow", "yellow", POLICY)
    assert "unknown channel" in raise_refusal("green", "purple", POLICY)
    assert higher_channels("yellow", POLICY) == ["red", "orange"]
    assert higher_channels("red", POLICY) == []


def test_a_released_truck_still_in_the_lane_is_stopped_and_sent_to_the_control():
    lane = LaneState(lane_id="L1", phase=Phase.RELEASED, crossing_id="C1", channel="green")
    new, cmds, why = raise_channel(lane, "C1", "red", POLICY, now=5.0)
    assert why == ""
    assert (new.phase, new.channel, new.since) == (Phase.HELD, "red", 5.0)
    assert isinstance(cmds[0], CloseBarrier)
    assert any(isinstance(c, ShowSign) and c.sign == "inspection" for c in cmds)


def test_a_held_truck_is_redirected_and_an_undecided_lane_keeps_the_raise_as_a_floor():
    held = LaneState(lane_id="L1", phase=Phase.HELD, crossing_id="C1", channel="yellow")
    new, cmds, _ = raise_channel(held, "C1", "orange", POLICY, now=1.0)
    assert new.channel == "orange" and [c.sign for c in cmds if isinstance(c, ShowSign)] == ["scanner"]
    assert not any(isinstance(c, CloseBarrier) for c in cmds)
    waiting = LaneState(lane_id="L1", phase=Phase.IDENTIFYING, crossing_id="C1", channel="")
    new, cmds, why = raise_channel(waiting, "C1", "red", POLICY, now=1.0)
    assert why == "" and new.phase is Phase.IDENTIFYING and new.channel == "red"
    assert not any(isinstance(c, ShowSign) for c in cmds)


def test_a_raise_for_a_truck_that_left_or_was_refused_is_not_applied():
    other = LaneState(lane_id="L1", phase=Phase.HELD, crossing_id="C2", channel="green")
    assert raise_channel(other, "C1", "red", POLICY, now=1.0)[2] == "the truck has left the lane"
    refused = LaneState(lane_id="L1", phase=Phase.REFUSED, crossing_id="C1", channel="yellow")
    lane, cmds, why = raise_channel(refused, "C1", "red", POLICY, now=1.0)
    assert lane is refused and cmds == [] and "refused" in why
    lowered = LaneState(lane_id="L1", phase=Phase.HELD, crossing_id="C1", channel="red")
    assert "only be raised" in raise_channel(lowered, "C1", "yellow", POLICY, now=1.0)[2]
