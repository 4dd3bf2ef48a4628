"""Loop-detector sequences to movements, and the debouncer: pure, no pins."""

from __future__ import annotations

import pytest

from edge_agent.devices.gate.loops import Debouncer, LoopState, step


def run(sequence: list[tuple[str, int]], state: LoopState | None = None) -> tuple[LoopState, list[str]]:
    state = state or LoopState()
    moves: list[str] = []
    for loop, occupied in sequence:
        state, out = step(state, loop, bool(occupied))
        moves += out
    return state, moves


FORWARD = [("arrival", 1), ("arrival", 0), ("on_scale", 1), ("on_scale", 0),
           ("under_boom", 1), ("under_boom", 0), ("exit", 1), ("exit", 0)]


def test_forward_crossing():
    state, moves = run(FORWARD)
    assert moves == ["arrived", "left_forward"]
    assert state == LoopState()


def test_long_truck_overlapping_loops_forward():
    seq = [("arrival", 1), ("on_scale", 1), ("arrival", 0), ("under_boom", 1), ("on_scale", 0),
           ("exit", 1), ("under_boom", 0), ("exit", 0)]
    assert run(seq)[1] == ["arrived", "left_forward"]


def test_exit_cleared_while_trailer_still_under_boom_is_not_yet_left():
    seq = [("arrival", 1), ("arrival", 0), ("on_scale", 1), ("on_scale", 0), ("under_boom", 1), ("exit", 1),
           ("exit", 0)]
    state, moves = run(seq)
    assert moves == ["arrived"]
    state, moves = run([("under_boom", 0), ("exit", 1), ("exit", 0)], state)
    assert moves == ["left_forward"]


def test_reverse_off_the_scale():
    seq = [("arrival", 1), ("arrival", 0), ("on_scale", 1), ("on_scale", 0), ("arrival", 1), ("arrival", 0)]
    assert run(seq)[1] == ["arrived", "left_reverse"]


def test_long_truck_backing_off_scale_and_arrival():
    seq = [("arrival", 1), ("on_scale", 1), ("on_scale", 0), ("arrival", 0)]
    assert run(seq)[1] == ["arrived", "left_reverse"]


def test_reverse_before_reaching_the_scale():
    seq = [("arrival", 1), ("arrival", 0), ("arrival", 1), ("arrival", 0)]
    assert run(seq)[1] == ["arrived", "left_reverse"]


def test_forward_onto_scale_is_not_reverse():
    seq = [("arrival", 1), ("arrival", 0), ("on_scale", 1)]
    state, moves = run(seq)
    assert moves == ["arrived"] and state.present


def test_next_truck_waiting_on_arrival_loop_starts_at_once():
    seq = FORWARD[:6] + [("exit", 1), ("arrival", 1), ("exit", 0)]
    state, moves = run(seq)
    assert moves == ["arrived", "left_forward", "arrived"]
    assert state.present and state.occupied == frozenset({"arrival"})


def test_truck_found_mid_lane_starts_no_crossing():
    state, moves = run([("on_scale", 1)])
    assert moves == [] and state.present
    assert run([("on_scale", 0), ("under_boom", 1), ("under_boom", 0), ("exit", 1), ("exit", 0)], state)[1] == [
        "left_forward"]


def test_unknown_loop_is_a_bug():
    with pytest.raises(ValueError):
        step(LoopState(), "photocell", True)


def test_debouncer_reports_leading_edge_at_once_and_ignores_chatter():
    d = Debouncer(0.05)
    assert d.edge(True, 0.000) == [True]
    assert d.edge(False, 0.002) == []
    assert d.edge(True, 0.004) == []
    assert d.due() == pytest.approx(0.05)
    assert d.settle(True, 0.05) == []
    assert d.due() is None and d.level is True


def test_debouncer_keeps_a_short_real_pulse():
    d = Debouncer(0.05)
    assert d.edge(True, 0.0) == [True]
    assert d.edge(False, 0.01) == []  # a 10 ms pulse: the fall is inside the window
    assert d.settle(False, 0.05) == [False]  # ... and reported when the window ends


def test_debouncer_zero_window_passes_every_edge():
    d = Debouncer(0.0)
    assert [d.edge(v, t) for v, t in [(True, 0), (False, 0), (True, 0)]] == [[True], [False], [True]]
