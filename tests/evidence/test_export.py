"""A crossing's upload plan, its chain proof, and the prosecutors' export with the clerk's
`evidence verify-export`, which fails on any changed byte."""

from __future__ import annotations

import zipfile

from click.testing import CliRunner

from edge_agent.evidence.cli import evidence
from edge_agent.evidence.export import build_export, verify_export
from edge_agent.evidence.proof import check_chain, listed_files
from edge_agent.evidence.upload import upload_plan


def _export(store, chain, crossing="X1"):
    plan = upload_plan(store.root, crossing)
    anchored = {m.sha256: m.sequence for m in chain}
    problems, head = check_chain(plan["chain"], crossing, anchored)
    assert problems == [] and head == chain[-1].sha256
    listed = listed_files(plan["chain"], crossing)
    files = {d: (store.root / f["path"]).read_bytes() for d, f in listed.items()}
    return build_export(site="xk-test", crossing_id=crossing, chain=plan["chain"],
                        head={"sha256": head, "sequence": chain[-1].sequence, "at": "2026-01-01T00:00:00Z"},
                        files=files, states=dict.fromkeys(files, "verified"), exported_by="ana")


def test_the_plan_lists_the_crossings_files_and_the_chain_to_the_head(store, chain):
    plan = upload_plan(store.root, "X1")
    assert [f["state"] for f in plan["files"]] == ["present"] * 3
    assert [link["body"]["sequence"] for link in plan["chain"]] == [2, 3, 4]
    assert upload_plan(store.root, "nobody") is None


def test_a_purged_file_is_reported_purged_with_its_tombstone_not_missing(store, chain):
    snapshot = next(f for f in chain[1].files if f["kind"] == "snapshot")
    tombstone = store.purge("X1", [{"path": snapshot["path"], "class": "media", "reason": "period"}])
    (store.root / next(f for f in chain[1].files if f["kind"] == "scale")["path"]).unlink()
    states = {f["kind"]: (f["state"], f["tombstone"]) for f in upload_plan(store.root, "X1")["files"]}
    assert states["snapshot"] == ("purged", tombstone.path.name)
    assert states["scale"] == ("missing", "")
    assert listed_files(upload_plan(store.root, "X1")["chain"], "X1")[snapshot["sha256"]]["purged"]


def test_a_chain_not_anchored_or_rewritten_is_refused(store, chain):
    plan = upload_plan(store.root, "X1")
    problems, head = check_chain(plan["chain"], "X1", {})
    assert head is None and any("anchored" in p for p in problems)
    plan["chain"][1]["body"]["files"][0]["sha256"] = "0" * 64
    problems, _ = check_chain(plan["chain"], "X1", {m.sha256: m.sequence for m in chain})
    assert any("edited" in p for p in problems)


def test_the_export_verifies_and_any_changed_byte_fails_it(store, chain, tmp_path):
    archive = tmp_path / "X1.zip"
    archive.write_bytes(_export(store, chain))
    ok = CliRunner().invoke(evidence, ["verify-export", str(archive)])
    assert ok.exit_code == 0, ok.output
    assert f"sha256 {chain[-1].sha256}" in ok.output and "3 file(s) match" in ok.output
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        assert "summary.html" in names and any(n.startswith("manifests/") for n in names)
        assert sum(n.startswith("files/") for n in names) == 3

    raw = archive.read_bytes()
    needle = b"<EventNotificationAlert>1"
    at = raw.index(needle) + len(needle) - 1
    changed = tmp_path / "changed.zip"
    changed.write_bytes(raw[:at] + b"7" + raw[at + 1:])
    bad = CliRunner().invoke(evidence, ["verify-export", str(changed)])
    assert bad.exit_code == 1 and "not as the RAU exported it" in bad.output, bad.output


def test_a_file_swapped_and_the_index_recomputed_still_fails_on_the_manifest(store, chain, tmp_path):
    """A forger who rewrites a file and its digest in the index is caught by the manifest."""
    import hashlib
    import io
    import json

    from edge_agent.evidence.manifest import body_sha256, canonical_json

    raw = _export(store, chain)
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    index = json.loads(members["index.json"])
    member = next(n for n in members if n.endswith("event.xml"))
    members[member] = b"<forged/>"
    index["members"][member] = hashlib.sha256(b"<forged/>").hexdigest()
    index.pop("index_sha256")
    index["index_sha256"] = body_sha256(index)
    members["index.json"] = canonical_json(index, indent=True)
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    problems, _ = verify_export(forged)
    assert problems == [f"{member}: differs from its manifest entry"]


def test_an_old_crossings_proof_leaves_out_the_manifests_between_its_seal_and_its_tombstone(store):
    from edge_agent.evidence.upload import TAIL

    store.add_bytes("OLD", "snapshot", "a.jpg", b"\xff\xd8old")
    seal = store.seal("OLD")
    others = []
    for n in range(TAIL + 10):
        store.add_bytes(f"N{n}", "scale", "frames.hex", bytes([n]))
        others.append(store.seal(f"N{n}"))
    tombstone = store.purge("OLD", [{"path": seal.files[0]["path"], "class": "media", "reason": "period"}])
    plan = upload_plan(store.root, "OLD")
    sequences = [link["body"]["sequence"] for link in plan["chain"]]
    assert sequences == [seal.sequence, tombstone.sequence]  # not the 74 between
    assert plan["files"][0]["state"] == "purged"

    each_anchored = {seal.sha256: seal.sequence, tombstone.sha256: tombstone.sequence}
    assert check_chain(plan["chain"], "OLD", each_anchored) == ([], tombstone.sha256)
    problems, _ = check_chain(plan["chain"], "OLD", {tombstone.sha256: tombstone.sequence})
    assert problems and "not anchored" in problems[0], "across a gap a later anchor proves nothing"
    forged = [plan["chain"][0], {"name": plan["chain"][1]["name"],
                                 "body": {**plan["chain"][1]["body"], "sequence": seal.sequence}}]
    problems, _ = check_chain(forged, "OLD", each_anchored)
    assert any("edited" in p for p in problems) and any("out of order" in p for p in problems)


def test_a_seal_whose_own_head_has_not_reached_the_hub_is_proven_by_a_later_linked_one(store, chain):
    plan = upload_plan(store.root, "X1")
    assert check_chain(plan["chain"], "X1", {chain[3].sha256: chain[3].sequence}) == ([], chain[3].sha256)
