"""ANPR payloads, plate crops and raw scale frames join their crossing's sealed manifest."""

from __future__ import annotations

import json

from edge_agent.commands import SaveEvidence
from edge_agent.devices.cctv.recorder import EvidenceRecorder
from edge_agent.evidence.crossing_feed import CrossingEvidenceFeed
from edge_agent.evidence.manifest import EvidenceStore, manifest_paths
from edge_agent.evidence.verify import verify_evidence

ISAPI = b"<EventNotificationAlert><ANPR><licensePlate>01123AB</licensePlate></ANPR></EventNotificationAlert>"


def feed_over(root):
    return CrossingEvidenceFeed(EvidenceRecorder(EvidenceStore(root), {}))


def test_device_bytes_go_to_the_next_crossing_of_their_lane_and_are_sealed(tmp_path):
    feed = feed_over(tmp_path)
    feed.anpr_payload("L1", "L1-front", "r1", "application/xml", ISAPI)
    feed.anpr_image("L1", "L1-front", "r1", "plate", b"\xff\xd8crop\xff\xd9")
    feed.anpr_payload("L2", "L2-front", "r2", "application/json", b'{"plate": "BG123AA"}')
    feed.execute(SaveEvidence(lane="L1", crossing_id="C1", moment="arrival"))
    feed.scale_frames("L1", "w1", ["02283030", "02283031"])
    feed.execute(SaveEvidence(lane="L1", crossing_id="C1", moment="weighed"))
    feed.execute(SaveEvidence(lane="L1", crossing_id="C1", moment="end"))
    feed.stop()

    [manifest] = [json.loads(p.read_bytes()) for p in manifest_paths(tmp_path)]
    names = sorted(e["path"].split("/", 2)[-1] for e in manifest["files"])
    assert names == ["anpr/L1-front-r1-plate.jpg", "anpr/L1-front-r1.xml", "scale/w1.hex"]
    scale = next(tmp_path.rglob("w1.hex"))
    assert scale.read_text() == "02283030\n02283031\n"
    assert feed.counts["handed_over"] == 3
    assert verify_evidence(tmp_path) == []


def test_a_camera_pushing_without_trucks_cannot_fill_the_memory(tmp_path):
    feed = CrossingEvidenceFeed(EvidenceRecorder(EvidenceStore(tmp_path), {}), max_items=4)
    for n in range(10):
        feed.anpr_payload("L1", "cam", f"r{n}", "application/json", b"{}")
    assert feed.counts["dropped"] == 6
    feed.execute(SaveEvidence(lane="L1", crossing_id="C9", moment="end"))
    feed.stop()
    kept = sorted(p.name for p in tmp_path.rglob("cam-*.json"))
    assert kept == ["cam-r6.json", "cam-r7.json", "cam-r8.json", "cam-r9.json"]
