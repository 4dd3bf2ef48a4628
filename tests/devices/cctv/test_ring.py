from datetime import UTC, datetime

import pytest

from edge_agent.devices.cctv.ring import FrameRing, RingFrame, scaled_size

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def frame(at: float, size: int = 1000) -> RingFrame:
    return RingFrame(at, NOW, b"x" * size, 160, 120)


def test_due_paces_at_the_ring_rate():
    ring = FrameRing(seconds=10, fps=5, max_bytes=10**6)
    # A 25 frames/s stream for 2 s offers 50 frames; the ring takes 5 per second.
    taken = sum(ring.due(n / 25) for n in range(50))
    assert taken == 10


def test_due_does_not_burst_after_a_gap():
    ring = FrameRing(seconds=10, fps=5, max_bytes=10**6)
    assert ring.due(0.0)
    # After a 10 s outage the schedule restarts instead of taking 50 "missed" frames.
    taken = sum(ring.due(10.0 + n / 25) for n in range(25))
    assert taken == 5


def test_old_frames_leave_by_age():
    ring = FrameRing(seconds=2, fps=5, max_bytes=10**6)
    for n in range(50):
        ring.push(frame(n * 0.2))
    kept = ring.window(-1, 100)
    assert kept[0].at_mono >= kept[-1].at_mono - 2
    assert len(ring) == 11
    assert ring.nbytes == 11 * 1000


def test_bytes_are_capped_whatever_the_age():
    ring = FrameRing(seconds=100, fps=5, max_bytes=5500)
    for n in range(20):
        ring.push(frame(n * 0.2))
    assert ring.nbytes <= 5500
    assert len(ring) == 5
    assert ring.evicted_for_size == 15
    assert ring.latest().at_mono == pytest.approx(19 * 0.2)


def test_a_single_frame_larger_than_the_cap_is_kept():
    ring = FrameRing(seconds=100, fps=5, max_bytes=500)
    ring.push(frame(0.0, 400))
    ring.push(frame(0.2, 900))
    assert len(ring) == 1 and ring.latest().at_mono == 0.2


def test_window_is_half_open():
    ring = FrameRing(seconds=100, fps=5, max_bytes=10**6)
    for n in range(10):
        ring.push(frame(float(n)))
    assert [f.at_mono for f in ring.window(2.0, 5.0)] == [3.0, 4.0, 5.0]
    ring.clear()
    assert len(ring) == 0 and ring.nbytes == 0 and ring.latest() is None


def test_scaled_size():
    assert scaled_size(1920, 1080, 640) == (640, 360)
    assert scaled_size(320, 240, 640) == (320, 240)  # never upscaled
    assert scaled_size(1920, 1080, 0) == (1920, 1080)
    assert scaled_size(1280, 720, 427)[1] % 2 == 0


def test_bad_sizes_refused():
    with pytest.raises(ValueError):
        FrameRing(seconds=0, fps=5, max_bytes=10)
