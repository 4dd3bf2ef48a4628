"""The stability rule over noisy ramps, with the time passed in (no clock inside)."""

from __future__ import annotations

import random

from edge_agent.devices.scale.frame import WeightFrame
from edge_agent.devices.scale.stability import Captured, Emptied, StabilityDetector, StabilityRule

RULE = StabilityRule(division_kg=20, min_weight_kg=1000, zero_band_kg=100, stable_readings=5, stable_window_s=1.0)
DT = 0.14  # a Toledo terminal's update period


def quantise(kg: float) -> float:
    return round(kg / 20) * 20.0


def truck(target_kg: float, rng: random.Random, *, flag: bool, settle_noise_kg: float = 8.0,
          hold_s: float = 4.0) -> list[WeightFrame]:
    """Empty bridge, a bumpy ramp, a decaying swing, a noisy hold, a ramp off, empty."""
    readings: list[WeightFrame] = []

    def add(kg: float, moving: bool) -> None:
        readings.append(WeightFrame(value_kg=quantise(kg), raw=f"{len(readings)}".encode(),
                                stable=(not moving) if flag else None))

    for _ in range(10):
        add(rng.uniform(-8, 8), False)
    steps = 20
    for i in range(steps):
        add(target_kg * i / steps + rng.gauss(0, 0.03 * target_kg), True)
    for i in range(8):
        add(target_kg + 200 * (1 - i / 8) * (-1) ** i, True)
    for _ in range(int(hold_s / DT)):
        add(target_kg + rng.uniform(-settle_noise_kg, settle_noise_kg), False)
    for i in range(steps):
        add(target_kg * (1 - i / steps) + rng.gauss(0, 0.03 * target_kg), True)
    for _ in range(10):
        add(rng.uniform(-8, 8), False)
    return readings


def run(readings: list[WeightFrame], detector: StabilityDetector | None = None, t0: float = 0.0):
    detector = detector or StabilityDetector(RULE)
    return [(i, o) for i, r in enumerate(readings) for o in detector.update(r, t0 + i * DT)]


def test_one_weighing_per_truck_at_the_settled_value_with_evidence():
    for seed in range(20):
        rng = random.Random(seed)
        target = quantise(rng.uniform(8000, 40000))
        for flag in (True, False):
            outcomes = run(truck(target, rng, flag=flag))
            kinds = [type(o) for _, o in outcomes]
            assert kinds == [Captured, Emptied], (seed, flag, outcomes)
            captured = outcomes[0][1]
            assert captured.gross_kg == target
            assert len(captured.raw_frames) >= RULE.stable_readings


def test_capture_waits_for_the_window_after_the_ramp():
    rng = random.Random(3)
    readings = truck(24000, rng, flag=False)
    (index, _), _ = run(readings)
    hold_start = 10 + 20 + 8
    assert index >= hold_start + int(RULE.stable_window_s / DT) - 1


def test_motion_flag_blocks_capture_even_when_values_are_still():
    detector = StabilityDetector(RULE)
    zero = [WeightFrame(value_kg=0.0, raw=b"z", stable=True)] * 6
    still_but_moving = [WeightFrame(value_kg=24000.0, raw=b"m", stable=False)] * 30
    assert run(zero + still_but_moving, detector) == []


def test_noise_wider_than_a_division_never_captures():
    rng = random.Random(1)
    outcomes = run(truck(24000, rng, flag=False, settle_noise_kg=60))
    assert not any(isinstance(o, Captured) for _, o in outcomes)


def test_no_weighing_without_a_zero_check_first():
    loaded = [WeightFrame(value_kg=24000.0, raw=b"x", stable=True)] * 40
    assert run(loaded) == []
    # Once the truck leaves and the next one comes, weighing works.
    rng = random.Random(2)
    outcomes = run(loaded + truck(18000, rng, flag=True))
    assert [type(o) for _, o in outcomes] == [Emptied, Captured, Emptied]
    assert outcomes[1][1].gross_kg == 18000


def test_out_of_range_negative_below_minimum_and_net_without_tare_never_weigh():
    zero = [WeightFrame(value_kg=0.0, raw=b"z", stable=True)] * 6
    for bad in (
        WeightFrame(value_kg=24000.0, raw=b"o", stable=True, out_of_range=True),
        WeightFrame(value_kg=-2400.0, raw=b"n", stable=True),
        WeightFrame(value_kg=980.0, raw=b"b", stable=True),
        WeightFrame(value_kg=24000.0, raw=b"t", stable=True, net=True),
    ):
        assert run(zero + [bad] * 40) == [], bad


def test_net_with_tare_weighs_the_gross():
    zero = [WeightFrame(value_kg=0.0, raw=b"z", stable=True)] * 6
    net = [WeightFrame(value_kg=22000.0, raw=b"n", stable=True, net=True, tare_kg=2000.0)] * 12
    ((_, captured),) = run(zero + net)
    assert captured.gross_kg == 24000.0


def test_a_single_zero_frame_does_not_empty_the_bridge():
    zero = [WeightFrame(value_kg=0.0, raw=b"z", stable=True)] * 6
    load = [WeightFrame(value_kg=24000.0, raw=b"l", stable=True)] * 12
    glitch = [WeightFrame(value_kg=0.0, raw=b"g", stable=True)]
    outcomes = run(zero + load + glitch + load)
    assert [type(o) for _, o in outcomes] == [Captured]


def test_reset_window_needs_a_fresh_window():
    detector = StabilityDetector(RULE)
    zero = [WeightFrame(value_kg=0.0, raw=b"z", stable=True)] * 6
    load = WeightFrame(value_kg=24000.0, raw=b"l", stable=True)
    run(zero, detector)
    for i in range(4):
        assert detector.update(load, 10 + i * DT) == []
    detector.reset_window()
    # Four more frames after a gap are not a full window on their own.
    assert all(detector.update(load, 20 + i * DT) == [] for i in range(4))
    assert any(isinstance(o, Captured) for i in range(4, 12) for o in detector.update(load, 20 + i * DT))
