"""The short form of a device's health, shared by /metrics and the RAU's health event."""

from __future__ import annotations

from edge_agent.health import device_summary, frame_rate


def test_each_device_kind_gives_its_rate_under_its_own_name():
    assert frame_rate({"frames_per_s": 9.5}) == 9.5  # a scale reader
    assert frame_rate({"fps": 10}) == 10.0  # a CCTV camera
    assert frame_rate({"running": True, "accepted": 3}) is None  # the ANPR listener has no rate
    assert frame_rate({"fps": True}) is None, "a flag is not a rate"


def test_the_summary_keeps_up_rate_and_age_and_nothing_else():
    scale = {"protocol": "toledo", "url": "socket://x", "connected": True, "frames_per_s": 9.5, "frames": 1200,
             "last_kg": 24100.0, "last_frame_age_s": 0.1}
    assert device_summary(scale) == {"up": True, "frames_per_s": 9.5, "last_frame_age_s": 0.1}
    assert device_summary({"running": False, "accepted": 0, "last_reject": "bad XML"}) == {"up": False}
    assert device_summary({"camera": "L1-cctv", "connected": False, "fps": 0.0, "last_frame_age_s": None}) == {
        "up": False, "frames_per_s": 0.0}
