"""The evidence uploader's rules, stepped by hand with its own clock: nothing goes while
the outbox is busy, the proof goes before any chunk, at most 8 chunks are unacknowledged,
the budget paces the chunks, what the hub holds is not sent again, what it does not
acknowledge is sent again after the resend timeout."""

from __future__ import annotations

import base64
import json

import pytest

from edge_agent.evidence.manifest import EvidenceStore
from edge_agent.evidence.upload import upload_plan
from edge_agent.sync.evidence_upload import WINDOW, EvidenceUploader


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig(tmp_path):
    store = EvidenceStore(tmp_path / "evidence")
    data = bytes(range(256)) * 40  # 10 KiB: ten chunks of 1 KiB
    store.add_bytes("C1", "clip", "clip.bin", data)
    manifest = store.seal("C1")
    sent: list[dict] = []
    state = {"idle": True}
    clock = Clock()

    def publish(topic: str, payload: bytes) -> bool:
        sent.append({"topic": topic, **json.loads(payload)})
        return True

    uploader = EvidenceUploader("bcp-a", store.root, lambda c: upload_plan(store.root, c), publish,
                                lambda: state["idle"], rate_bytes_per_s=1024 * 1024, chunk_bytes=1024,
                                resend_timeout_s=30.0, clock=clock)
    return uploader, sent, state, clock, manifest, data


def chunks(sent):
    return [m for m in sent if m["stream"] == "evidence_chunk"]


def accept(uploader, have=None):
    uploader.acked(json.dumps({"request": "R1", "manifest": "accepted", "have": have or {}}).encode())


def test_nothing_goes_while_the_outbox_is_busy_and_the_proof_goes_first(rig):
    uploader, sent, state, clock, manifest, _ = rig
    uploader.request("R1", "C1")
    state["idle"] = False
    uploader._step()
    assert sent == []
    state["idle"] = True
    uploader._step()
    [proof] = sent
    assert proof["topic"] == "bcp/v1/bcp-a/up/evidence_manifest" and proof["request"] == "R1"
    assert proof["files"][0]["sha256"] == manifest.files[0]["sha256"] and proof["chunk_bytes"] == 1024
    uploader._step()
    assert chunks(sent) == [], "no chunk before the hub accepted the proof"
    accept(uploader)
    state["idle"] = False
    uploader._step()
    assert chunks(sent) == []
    state["idle"] = True
    uploader._step()
    assert [c["index"] for c in chunks(sent)] == [0]
    uploader.request("R1", "C1")  # the hub asking again, the site never restarted: still one request
    assert uploader.counters["requests"] == 1
    assert [s for s in sent if s["topic"].endswith("evidence_manifest")] == [proof]


def test_a_window_of_chunks_resends_after_the_timeout_and_skips_what_the_hub_holds(rig):
    uploader, sent, state, clock, manifest, data = rig
    digest = manifest.files[0]["sha256"]
    uploader.request("R1", "C1")
    uploader._step()
    accept(uploader, {digest: [0, 1]})  # the hub holds two chunks from an earlier request
    for _ in range(20):
        clock.now += 0.01  # the budget's refill; the window is what stops it
        uploader._step()
    assert [c["index"] for c in chunks(sent)] == list(range(2, 2 + WINDOW))
    assert base64.b64decode(chunks(sent)[0]["data"]) == data[2048:3072]
    uploader.acked(json.dumps({"request": "R1", "have": {digest: [2, 3, 4, 5, 6, 7, 8, 9]}}).encode())
    for _ in range(5):
        uploader._step()
    assert uploader.health()["requests_open"] == 0 and uploader.counters["requests_done"] == 1

    sent.clear()
    uploader.request("R2", "C1")
    uploader._step()
    uploader.acked(json.dumps({"request": "R2", "manifest": "accepted", "have": {digest: list(range(9))}}).encode())
    clock.now += 0.01
    uploader._step()
    uploader._step()
    assert [c["index"] for c in chunks(sent)] == [9]
    clock.now += 31
    uploader._step()
    assert [c["index"] for c in chunks(sent)] == [9, 9] and uploader.counters["chunks_resent"] == 1


def test_the_budget_paces_the_chunks(rig):
    uploader, sent, state, clock, manifest, _ = rig
    uploader.rate = 1024.0  # one chunk a second
    uploader.request("R1", "C1")
    uploader._step()
    accept(uploader)
    uploader._step()
    wait_s = uploader._step()
    assert len(chunks(sent)) == 1 and wait_s == pytest.approx(1.0)
    clock.now += 1.0
    uploader._step()
    assert len(chunks(sent)) == 2


def test_a_crossing_the_site_has_no_manifest_of_is_answered_so(rig):
    uploader, sent, *_ = rig
    uploader.request("R1", "NOPE")
    uploader._step()
    uploader._step()
    assert sent[0]["error"] and sent[0]["crossing_id"] == "NOPE"
    uploader.acked(json.dumps({"request": "R1", "manifest": "refused"}).encode())
    assert uploader.health()["requests_open"] == 0
    uploader.acked(b"not json")
    assert uploader.counters["acks_rejected"] == 1


def test_a_manifest_the_site_cannot_read_is_reported_and_the_queue_goes_on(rig):
    uploader, sent, state, clock, manifest, _ = rig
    body = json.loads(manifest.path.read_bytes())
    body["files"][0]["size"] = "large"
    manifest.path.chmod(0o644)
    manifest.path.write_text(json.dumps(body))
    uploader.request("R1", "C1")
    uploader._step()
    uploader._step()
    assert "cannot read its manifests" in sent[0]["error"] and uploader.counters["plans_failed"] == 1
    uploader.acked(json.dumps({"request": "R1", "manifest": "refused"}).encode())
    uploader.request("R2", "NOPE")
    uploader._step()
    uploader._step()
    assert sent[-1]["request"] == "R2"


def test_a_cctv_snapshot_goes_ahead_of_an_evidence_upload(rig):
    uploader, sent, state, clock, manifest, _ = rig
    uploader.snapshot_source = lambda lane: ("L1-scene", b"\xff\xd8frame") if lane == "L1" else None
    uploader.request("R1", "C1")
    uploader.snapshot("S1", "L1")
    uploader.snapshot("S2", "L7")
    uploader._step()
    assert sent[0]["stream"] == "cctv_snapshot" and sent[0]["request"] == "S1" and sent[0]["camera"] == "L1-scene"
    assert base64.b64decode(sent[0]["data"]) == b"\xff\xd8frame"
    uploader.acked(json.dumps({"request": "S1", "manifest": "accepted"}).encode())
    uploader._step()
    uploader._step()
    assert sent[1]["request"] == "S2" and "no recent frame" in sent[1]["error"]
    uploader.acked(json.dumps({"request": "S2", "manifest": "accepted"}).encode())
    uploader._step()
    uploader._step()
    assert sent[-1]["stream"] == "evidence_manifest" and uploader.counters["requests_done"] == 2
