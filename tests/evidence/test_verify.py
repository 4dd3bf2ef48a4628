"""The verifier catches each kind of tampering, and nothing on an intact chain."""

from __future__ import annotations

import json
import os
import time

from edge_agent.evidence.manifest import EvidenceStore, body_sha256, canonical_json, manifest_paths
from edge_agent.evidence.verify import verify_evidence


def verify(store, **kwargs):
    return verify_evidence(store.root, **kwargs)


def test_an_intact_chain_has_no_problems(store, chain):
    assert verify(store) == []
    assert verify(store, unsealed_grace_s=0) == []
    assert verify(store, expected_head=chain[-1].sha256) == []
    assert verify(store, expected_head=chain[-1].sha256[:16]) == []


def test_a_deleted_file_is_found(store, chain):
    victim = chain[1].files[0]["path"]
    (store.root / victim).unlink()
    assert verify(store) == [f"missing file: {victim} (listed in {chain[1].path.relative_to(store.root).as_posix()})"]


def test_a_changed_file_is_found(store, chain):
    victim = chain[2].files[1]["path"]
    path = store.root / victim
    path.write_bytes(path.read_bytes().replace(b"0", b"1"))
    (problem,) = verify(store)
    assert problem.startswith(f"changed file: {victim}")


def test_a_file_replaced_by_one_of_the_same_size_is_found(store, chain):
    victim = store.root / chain[0].files[0]["path"]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    assert any(p.startswith("changed file") for p in verify(store))


def test_a_naively_edited_manifest_is_found(store, chain):
    path = chain[1].path
    body = json.loads(path.read_text())
    body["clock"]["offset_s"] = 9.0
    path.write_bytes(canonical_json(body, indent=True))
    problems = verify(store)
    assert any("edited" in p and path.name in p for p in problems)
    assert any("link does not match" in p and chain[2].path.name in p for p in problems)


def test_an_edited_manifest_with_a_recomputed_digest_breaks_the_next_link(store, chain):
    # Someone hides a changed snapshot by rewriting its manifest entry and its digest.
    target = store.root / chain[1].files[0]["path"]
    target.write_bytes(b"forged")
    body = json.loads(chain[1].path.read_text())
    for entry in body["files"]:
        if entry["path"] == chain[1].files[0]["path"]:
            import hashlib

            entry["sha256"], entry["size"] = hashlib.sha256(b"forged").hexdigest(), 6
    body["manifest_sha256"] = body_sha256(body)
    chain[1].path.write_bytes(canonical_json(body, indent=True))
    problems = verify(store)
    expected = (
        f"{chain[2].path.relative_to(store.root).as_posix()}: link does not match the previous "
        f"manifest {chain[1].path.relative_to(store.root).as_posix()} (a manifest changed, removed or out of order)"
    )
    assert problems == [expected]


def test_a_removed_manifest_is_found(store, chain):
    chain[1].path.unlink()
    problems = verify(store, unsealed_grace_s=0)
    later = chain[2].path.name
    assert any(later in p and "sequence 3, expected 2" in p for p in problems)
    assert any(later in p and "link does not match" in p for p in problems)
    # Its files are now listed nowhere.
    assert sum(p.startswith("unsealed file: crossings/X1/") for p in problems) == 3


def test_a_removed_first_manifest_is_found(store, chain):
    chain[0].path.unlink()
    problems = verify(store)
    assert any("first manifest found but it links to" in p for p in problems)


def test_reordered_manifests_are_found(store, chain):
    # Swap the names (and so the order) of the second and third manifests.
    a, b = chain[1].path, chain[2].path
    tmp = a.with_suffix(".swap")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    problems = verify(store)
    assert any("sequence" in p for p in problems)
    assert any("link does not match" in p for p in problems)


def test_a_renamed_manifest_is_found(store, chain):
    path = chain[3].path
    os.rename(path, path.with_name(path.name.replace("_X3", "_X7")))
    problems = verify(store)
    assert any("does not name its crossing" in p for p in problems)


def test_a_removed_last_manifest_shows_as_unsealed_files_and_a_missing_anchor(store, chain):
    chain[-1].path.unlink()
    problems = verify(store, unsealed_grace_s=0, expected_head=chain[-1].sha256)
    assert sum(p.startswith("unsealed file: crossings/X3/") for p in problems) == 3
    assert any(p.startswith(f"anchored manifest {chain[-1].sha256}") for p in problems)


def test_files_of_an_open_crossing_are_not_problems_within_the_grace(store, chain):
    store.add_file("OPEN", "snapshot", "arrival.jpg", b"x")
    assert verify(store) == []
    assert verify(store, unsealed_grace_s=60, now_s=time.time() + 120) == [
        "unsealed file: crossings/OPEN/snapshot/arrival.jpg (no manifest lists it)"
    ]


def test_a_garbled_manifest_is_reported_and_the_rest_still_checked(store, chain):
    chain[1].path.write_bytes(b"\x00garbage")
    (store.root / chain[3].files[0]["path"]).unlink()
    problems = verify(store)
    assert any("unreadable manifest" in p for p in problems)
    assert any(p.startswith("missing file: crossings/X3/") for p in problems)


def test_a_store_opened_on_a_garbled_last_manifest_continues_and_the_verifier_says_where(store, chain):
    chain[-1].path.write_bytes(b"{broken")
    again = EvidenceStore(store.root)
    again.add_file("X9", "snapshot", "a.jpg", b"a")
    nxt = again.seal("X9")
    assert nxt.sequence == 5
    problems = verify(store, unsealed_grace_s=3600)
    assert any("unreadable manifest" in p and chain[-1].path.name in p for p in problems)


def test_a_missing_folder_is_one_problem(tmp_path):
    assert verify_evidence(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no such evidence folder"]


def test_an_entry_pointing_outside_the_folder_is_refused(store, chain):
    body = json.loads(chain[-1].path.read_text())
    body["files"][0]["path"] = "../../etc/passwd"
    body["manifest_sha256"] = body_sha256(body)
    chain[-1].path.write_bytes(canonical_json(body, indent=True))
    assert any("bad path" in p for p in verify(store))


def test_manifest_paths_ignore_temporary_files(store, chain):
    (chain[0].path.parent / ".manifest-abc.tmp").write_bytes(b"half")
    assert manifest_paths(store.root) == [m.path for m in chain]


# --------------------------------------------------------------------------- issue 14, item 9


def _forge_from(store, chain, index: int, path: str, data: bytes) -> None:
    """Replace a file of chain[index] and recompute that manifest and every later one, as a
    forger with write access to the folder would: the chain then holds on its own."""
    import hashlib

    (store.root / path).write_bytes(data)
    previous = None
    for manifest in chain[index:]:
        body = json.loads(manifest.path.read_text())
        for entry in body["files"]:
            if entry["path"] == path:
                entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
        if previous is not None:
            body["previous"]["sha256"] = previous
        body["manifest_sha256"] = previous = body_sha256(body)
        manifest.path.write_bytes(canonical_json(body, indent=True))


def test_a_file_replaced_with_every_later_manifest_recomputed_is_caught_only_by_the_anchored_head(store, chain):
    _forge_from(store, chain, 1, chain[1].files[0]["path"], b"forged snapshot")
    assert verify(store) == [], "the chain alone cannot tell"
    problems = verify(store, expected_head=chain[-1].sha256)
    assert problems == [f"anchored manifest {chain[-1].sha256} is not in the chain (manifests removed or replaced)"]


def test_a_removed_newest_manifest_is_caught_by_the_anchored_head_at_once(store, chain):
    chain[-1].path.unlink()
    notices: list[str] = []
    assert verify(store, notices=notices) == [], "its files look like an open crossing's for a day"
    assert len(notices) == 3 and all(n.startswith("open crossing: crossings/X3/") for n in notices)
    assert verify(store, expected_head=chain[-1].sha256) == [
        f"anchored manifest {chain[-1].sha256} is not in the chain (manifests removed or replaced)"]


def test_a_file_planted_in_a_sealed_crossing_is_reported_at_once(store, chain):
    planted = store.root / "crossings" / "X1" / "snapshot" / "extra.jpg"
    planted.write_bytes(b"planted")
    stray = store.root / "crossings" / "loose.bin"
    stray.write_bytes(b"stray")
    assert verify(store) == [
        "unlisted file: crossings/X1/snapshot/extra.jpg (in sealed crossing X1, but no manifest lists it)",
        "unlisted file: crossings/loose.bin (outside any crossing's folder)",
    ]


def test_an_open_crossing_is_a_notice_until_its_grace_ends(store, chain):
    store.add_file("OPEN", "snapshot", "arrival.jpg", b"x")
    notices: list[str] = []
    assert verify(store, notices=notices) == []
    assert notices == ["open crossing: crossings/OPEN/snapshot/arrival.jpg (not sealed yet)"]
    store.seal("OPEN")
    notices.clear()
    assert verify(store, notices=notices) == [] and notices == []
