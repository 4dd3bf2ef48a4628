"""What the lane page shows: the live weight's state and the lane's latest snapshot."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from edge_agent.console.readouts import crossing_snapshots, health_view, is_plate_image, latest_snapshot, live_weight
from edge_agent.models import WeightReading

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _reading(**kw):
    return WeightReading(lane="L1", value_kg=kw.pop("value_kg", 24000.0), at=kw.pop("at", NOW), **kw)


def test_stable_motion_overload_and_no_data():
    assert live_weight(_reading(stable=True), NOW) == {"kg": 24000.0, "state": "stable"}
    assert live_weight(_reading(stable=False), NOW)["state"] == "motion"
    assert live_weight(_reading(stable=True, out_of_range=True), NOW)["state"] == "overload"
    assert live_weight(_reading(stable=None), NOW)["state"] == "unknown"
    assert live_weight(None, NOW) == {"kg": None, "state": "no data"}
    assert live_weight(_reading(stable=True, at=NOW - timedelta(seconds=10)), NOW) == {"kg": None, "state": "no data"}


def test_the_latest_snapshot_is_the_newest_of_the_first_crossing_that_has_one(tmp_path):
    for crossing, names in (("C1", ("arrival_cam1_1.jpg", "decision_cam1_2.jpg")), ("C0", ("end_cam1_0.jpg",))):
        folder = tmp_path / "crossings" / crossing / "snapshot"
        folder.mkdir(parents=True)
        for n, name in enumerate(names):
            (folder / name).write_bytes(b"\xff\xd8\xff")
            os.utime(folder / name, (1000 + n, 1000 + n))
    (tmp_path / "crossings" / "C1" / "anpr").mkdir()
    (tmp_path / "crossings" / "C1" / "anpr" / "licensePlatePicture.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "crossings" / "C1" / "clip").mkdir()
    (tmp_path / "crossings" / "C1" / "clip" / "hit.avi").write_bytes(b"RIFF")
    assert crossing_snapshots(tmp_path, "C1") == ["crossings/C1/anpr/licensePlatePicture.jpg",
                                                  "crossings/C1/snapshot/arrival_cam1_1.jpg",
                                                  "crossings/C1/snapshot/decision_cam1_2.jpg"]
    assert is_plate_image("crossings/C1/anpr/licensePlatePicture.jpg")
    assert not is_plate_image("crossings/C1/snapshot/arrival_cam1_1.jpg")
    assert latest_snapshot(tmp_path, ["C1", "C0"]) == "crossings/C1/snapshot/decision_cam1_2.jpg"
    assert latest_snapshot(tmp_path, ["C2", "C0"]) == "crossings/C0/snapshot/end_cam1_0.jpg"
    assert latest_snapshot(tmp_path, []) == ""
    assert crossing_snapshots(tmp_path, "../C1") == [] and crossing_snapshots(tmp_path / "missing", "C1") == []


class _Site:
    """Just the agent's health(), as the lane page reads it."""

    def __init__(self, devices: dict) -> None:
        self.devices = devices

    def health(self) -> dict:
        return {"devices": self.devices, "sync": {"enabled": False}}


def test_device_health_says_up_or_down_and_why_the_last_frame_was_rejected():
    scale = {"protocol": "xk3190", "url": "socket://10.0.0.7:4001", "connected": True, "frames_per_s": 9.5,
             "frames": 120, "rejected": 3, "last_reject": {"reason": "bad checksum", "raw": "02", "at": ""}}
    view = health_view(_Site({"ScaleReader:L1": scale, "CctvCamera:L1:front": {"connected": False, "fps": 0.0},
                              "AnprListener:L1": {"running": True}}), backlog=0)
    devices = view["devices"]
    assert devices["ScaleReader:L1"]["ok"] is True
    assert devices["ScaleReader:L1"]["detail"].endswith("; last rejected: bad checksum")
    camera = devices["CctvCamera:L1:front"]
    assert camera["ok"] is False and "last rejected" not in camera["detail"]
    assert devices["AnprListener:L1"]["ok"] is True
