"""EvidenceStore: files written once, manifests chained, the chain continued after a restart."""

from __future__ import annotations

import hashlib
import itertools
import json
import os

from edge_agent.evidence.manifest import EvidenceStore, body_sha256, manifest_paths


def test_a_manifest_lists_every_file_with_its_sha256(store, chain):
    first = chain[0]
    assert first.sequence == 1 and first.body["previous"] is None
    assert first.body["clock"] == {"source": "system", "offset_s": 0.0}
    assert {f["kind"] for f in first.files} == {"snapshot", "scale", "anpr"}
    for entry in first.files:
        data = (store.root / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["path"].startswith("crossings/X0/")
    assert first.sha256 == body_sha256(json.loads(first.path.read_text()))


def test_each_manifest_links_to_the_one_before(chain):
    for before, after in itertools.pairwise(chain):
        assert after.sequence == before.sequence + 1
        assert after.body["previous"] == {"name": before.path.name, "sha256": before.sha256,
                                          "sequence": before.sequence}
    assert chain[3].body["clock"]["offset_s"] == 0.012


def test_manifest_names_sort_in_chain_order(store, chain):
    assert manifest_paths(store.root) == [m.path for m in chain]
    assert all(m.path.name.endswith(f"_{m.crossing_id}.json") for m in chain)
    assert store.head == chain[-1]


def test_a_restarted_store_continues_the_chain(store, chain):
    again = EvidenceStore(store.root)
    assert again.head.sha256 == chain[-1].sha256
    again.add_file("X9", "snapshot", "a.jpg", b"data")
    nxt = again.seal("X9")
    assert nxt.sequence == 5
    assert nxt.body["previous"]["sha256"] == chain[-1].sha256
    assert manifest_paths(store.root)[-1] == nxt.path


def test_files_left_from_before_a_restart_are_sealed_as_recovered(store):
    store.add_file("X1", "snapshot", "a.jpg", b"one")
    again = EvidenceStore(store.root)  # the process died before sealing X1
    again.add_file("X1", "snapshot", "b.jpg", b"two")
    manifest = again.seal("X1")
    by_name = {e["path"].rsplit("/", 1)[1]: e for e in manifest.files}
    assert set(by_name) == {"a.jpg", "b.jpg"}
    assert by_name["a.jpg"]["recovered"] is True and "recovered" not in by_name["b.jpg"]
    assert by_name["a.jpg"]["sha256"] == hashlib.sha256(b"one").hexdigest()


def test_a_second_seal_of_a_crossing_lists_only_new_files(store):
    store.add_file("X1", "snapshot", "a.jpg", b"one")
    first = store.seal("X1")
    store.add_file("X1", "snapshot", "late.jpg", b"late")
    second = store.seal("X1")
    assert [e["path"] for e in first.files] == ["crossings/X1/snapshot/a.jpg"]
    assert [e["path"] for e in second.files] == ["crossings/X1/snapshot/late.jpg"]


def test_files_are_never_overwritten(store):
    a = store.add_file("X1", "snapshot", "same.jpg", b"first")
    b = store.add_file("X1", "snapshot", "same.jpg", b"second")
    assert a != b and a.read_bytes() == b"first" and b.read_bytes() == b"second"
    assert b.name == "same.1.jpg"


def test_names_cannot_leave_the_crossing_folder(store):
    path = store.add_file("../../etc", "../snap", "../../passwd", b"x")
    assert path.resolve().is_relative_to((store.root / "crossings").resolve())
    assert ".." not in path.relative_to(store.root).as_posix()


def test_add_path_moves_a_file_in_and_hashes_it(store):
    scratch = store.scratch_dir() / "clip.avi"
    scratch.write_bytes(b"RIFF....AVI " * 1000)
    path = store.add_path("X1", "clip", "hit.avi", scratch)
    assert not scratch.exists()
    (entry,) = store.pending("X1")
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["kind"] == "clip"


def test_manifests_are_readable_and_only_they_are_fsynced(store, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store.add_file("X1", "snapshot", "a.jpg", b"one" * 1000)
    store.add_bytes("X1", "anpr", "p.json", b"{}")
    assert synced == []  # evidence files: no fsync, the SD card thanks us
    manifest = store.seal("X1")
    assert len(synced) == 2  # the manifest file and its folder
    assert manifest.path.stat().st_mode & 0o777 == 0o644
    assert not list(manifest.path.parent.glob(".manifest-*"))
