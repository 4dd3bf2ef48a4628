"""EvidenceRecorder: snapshots and clips from real cameras on the MJPEG simulator."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from edge_agent.commands import SaveEvidence
from edge_agent.devices.cctv.recorder import EvidenceRecorder, write_clip
from edge_agent.devices.cctv.ring import RingFrame
from edge_agent.evidence.manifest import EvidenceStore, manifest_paths
from edge_agent.evidence.verify import verify_evidence


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(tmp_path / "evidence")


@pytest.fixture
def recorders():
    made: list[EvidenceRecorder] = []

    def make(*args, **kwargs) -> EvidenceRecorder:
        recorder = EvidenceRecorder(*args, **kwargs)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.stop(timeout_s=10)


def files_of(store: EvidenceStore, crossing: str, kind: str):
    return sorted((store.root / "crossings" / crossing / kind).glob("*"))


def read_manifest(path):
    return json.loads(path.read_text())


def test_arrival_gives_one_full_size_snapshot_per_lane_camera(sim, cameras, store, recorders, wait_until):
    lane1 = [cameras(sim.url, "L1", "east"), cameras(sim.url, "L1", "west")]
    other = cameras(sim.url, "L2", "other")
    for cam in (*lane1, other):
        cam.start()
    wait_until(lambda: all(c.snapshot_jpeg() for c in (*lane1, other)))
    recorder = recorders(store, {"L1": lane1, "L2": [other]})
    recorder.on_lane_event("L1", "C1", "arrival", hit=False)
    recorder.seal("C1")
    assert recorder.flush(30)
    snaps = files_of(store, "C1", "snapshot")
    assert [p.name.split("_")[:2] for p in snaps] == [["arrival", "east"], ["arrival", "west"]]
    for path in snaps:
        image = cv2.imread(str(path))
        assert image.shape == (240, 320, 3)
    assert files_of(store, "C1", "clip") == []
    (manifest,) = manifest_paths(store.root)
    body = read_manifest(manifest)
    assert body["crossing_id"] == "C1"
    assert sorted(f["path"] for f in body["files"]) == [p.relative_to(store.root).as_posix() for p in snaps]
    assert recorder.counts["snapshots"] == 2 and recorder.counts["clips"] == 0
    assert verify_evidence(store.root) == []


def test_a_hit_adds_a_clip_from_before_and_after_and_the_seal_waits_for_it(sim, cameras, store, recorders,
                                                                          wait_until):
    cam = cameras(sim.url, "L1", "scene", ring_fps=5, ring_seconds=10, clip_before_s=2.0, clip_after_s=2.0)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 12)
    recorder = recorders(store, {"L1": [cam]})
    recorder.on_lane_event("L1", "C2", "arrival", hit=False)
    recorder.on_lane_event("L1", "C2", "decision", hit=True)
    recorder.seal("C2")  # queued before the clip's second half exists
    assert recorder.flush(60)
    (clip,) = files_of(store, "C2", "clip")
    assert clip.suffix == ".avi" and clip.name.startswith("decision_scene_")
    video = cv2.VideoCapture(str(clip))
    assert video.isOpened()
    fourcc = int(video.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii")
    assert fourcc == "MJPG"
    count = 0
    while True:
        ok, image = video.read()
        if not ok:
            break
        assert image.shape == (120, 160, 3)
        count += 1
    video.release()
    assert count >= 6  # about 20 (four seconds at 5 frames/s); a busy machine decodes fewer
    (manifest,) = manifest_paths(store.root)
    kinds = sorted(f["kind"] for f in read_manifest(manifest)["files"])
    assert kinds == ["clip", "snapshot", "snapshot"]
    assert verify_evidence(store.root) == []


def test_output_bus_shape_seals_at_the_end(sim, cameras, store, recorders, wait_until):
    cam = cameras(sim.url, "L1", "scene")
    cam.start()
    wait_until(cam.snapshot_jpeg)
    recorder = recorders(store, {"L1": [cam]}, clock_offset=lambda: -0.25)
    sealed = []
    recorder.on_sealed = sealed.append
    for moment in ("arrival", "weighed", "release", "end"):
        if moment == "end":
            recorder.add_bytes("C3", "scale", "frames.hex", b"\x02 1234 \r")
        command = SaveEvidence(lane="L1", crossing_id="C3", moment=moment)
        assert recorder.accepts(command)
        recorder.execute(command)
    assert not recorder.accepts(object())
    assert recorder.flush(30)
    assert len(files_of(store, "C3", "snapshot")) == 4
    assert [p.name for p in files_of(store, "C3", "scale")] == ["frames.hex"]
    (manifest,) = sealed
    assert manifest.body["clock"]["offset_s"] == -0.25
    assert len(manifest.files) == 5


def test_a_camera_without_frames_is_counted_not_raised(closed_port_url, cameras, store, recorders, caplog):
    caplog.set_level(logging.WARNING)
    cam = cameras(closed_port_url, "L1", "dead", clip_after_s=1.0)
    cam.start()
    recorder = recorders(store, {"L1": [cam]})
    recorder.on_lane_event("L1", "C4", "arrival", hit=True)
    recorder.on_lane_event("L9", "C4", "arrival", hit=False)  # a lane with no cameras
    recorder.seal("C4")
    assert recorder.flush(60)
    assert recorder.counts["snapshots_missing"] == 1
    assert recorder.counts["clips_empty"] == 1
    assert recorder.counts["sealed"] == 1
    assert any("evidence_snapshot_missing" in r.getMessage() for r in caplog.records)
    (manifest,) = manifest_paths(store.root)
    assert read_manifest(manifest)["files"] == []


def test_a_write_failure_is_counted_and_the_worker_goes_on(sim, cameras, store, recorders, wait_until):
    cam = cameras(sim.url, "L1", "scene")
    cam.start()
    wait_until(cam.snapshot_jpeg)
    # A plain file where the crossing's folder should be: every write for C5 fails.
    (store.root / "crossings" / "C5").write_bytes(b"in the way")
    recorder = recorders(store, {"L1": [cam]})
    recorder.on_lane_event("L1", "C5", "arrival", hit=False)
    recorder.on_lane_event("L1", "C6", "arrival", hit=False)
    recorder.seal("C6")
    assert recorder.flush(30)
    assert recorder.counts["failures"] == 1
    assert recorder.counts["snapshots"] == 1
    assert len(files_of(store, "C6", "snapshot")) == 1


def test_a_full_queue_drops_and_counts(store, recorders, caplog):
    recorder = recorders(store, {}, queue_size=1)
    # Fill faster than the worker can empty: at least one of many must be dropped.
    for n in range(2000):
        recorder.add_bytes("C7", "anpr", f"p{n}.json", b"{}")
    assert recorder.counts["dropped"] > 0
    assert recorder.flush(60)
    written = len(files_of(store, "C7", "anpr"))
    assert written + recorder.counts["dropped"] == 2000


def test_write_clip_resizes_frames_of_another_size(tmp_path):
    frames = []
    for n, (w, h) in enumerate([(160, 120), (160, 120), (320, 240)]):
        image = np.full((h, w, 3), 40 * n, np.uint8)
        frames.append(RingFrame(float(n), None, cv2.imencode(".jpg", image)[1].tobytes(), w, h))
    frames.append(RingFrame(9.0, None, b"not a jpeg", 160, 120))
    path = tmp_path / "clip.avi"
    assert write_clip(frames, path, 5.0) == 3
    video = cv2.VideoCapture(str(path))
    shapes = []
    while (got := video.read())[0]:
        shapes.append(got[1].shape)
    video.release()
    assert shapes == [(120, 160, 3)] * 3


def test_media_past_the_budget_are_counted_as_refused_and_clips_not_even_encoded(sim, cameras, tmp_path, recorders,
                                                                                wait_until):
    from edge_agent.evidence.budget import CRITICAL, MediaBudget

    budget = MediaBudget(cap_bytes=1000)
    budget.recount(1000)  # at the cap
    assert budget.state == CRITICAL
    store = EvidenceStore(tmp_path / "evidence", budget)
    cam = cameras(sim.url, "L1", "scene", ring_fps=5, ring_seconds=10, clip_before_s=1.0, clip_after_s=1.0)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 6)
    recorder = recorders(store, {"L1": [cam]})
    recorder.on_lane_event("L1", "C9", "arrival", hit=False)
    recorder.on_lane_event("L1", "C9", "decision", hit=True)
    recorder.seal("C9")
    assert recorder.flush(60)
    assert recorder.counts["snapshots"] == 0 and recorder.counts["clips"] == 0
    assert recorder.counts["media_refused"] == 3  # two snapshots and the clip
    assert list((store.root / "crossings").rglob("*.avi")) == []
    assert list(store.scratch_dir().iterdir()) == []
