"""The chain proof of one crossing's evidence, checked away from the site: by the hub
when a site uploads it, and by a court clerk on an export (docs/evidence.md).

A proof is the list of manifests from the crossing's first manifest to a manifest
whose digest the site anchored at the RAU as it sealed (the `evidence_head` stream).
It holds when each manifest matches its own digest, each links to the one before it
(sequence + 1, the previous name and digest), and one of them is anchored at or after
the crossing's last manifest: a forger would have to break SHA-256, or the hub's record,
to change a file, a manifest or the order. Pure: values in, problems out.

    problems, head = check_chain(chain, "01J...", {"9f2c...": 41})
    files = listed_files(chain, "01J...")   # {sha256: entry}, purged ones with their tombstone
"""

from __future__ import annotations

from typing import Any

from edge_agent.evidence.manifest import FORMAT, FORMATS, PURGE_FORMAT, body_sha256, safe_part


def check_chain(chain: list[dict[str, Any]], crossing_id: str,
                anchored: dict[str, int]) -> tuple[list[str], str | None]:
    """(problems, the newest anchored digest reached). `chain`: [{"name", "body"}] in
    order; `anchored`: digest -> sequence of the heads the site sent to the RAU."""
    problems: list[str] = []
    if not chain:
        return ["no manifest in the proof"], None
    prev: tuple[str, str, int] | None = None  # name, digest, sequence
    last_of_crossing = -1
    head: str | None = None
    head_at = -1
    for n, link in enumerate(chain):
        name, body = str(link.get("name", "")), link.get("body")
        if not isinstance(body, dict):
            problems.append(f"{name}: not a manifest")
            prev = None
            continue
        digest = body_sha256(body)
        if body.get("format") not in FORMATS:
            problems.append(f"{name}: unknown format {body.get('format')!r}")
        if body.get("manifest_sha256") != digest:
            problems.append(f"{name}: edited (content does not match its manifest_sha256)")
        if not name.endswith(f"_{safe_part(str(body.get('crossing_id', '')))}.json"):
            problems.append(f"{name}: file name does not name its crossing")
        if n == 0 and body.get("crossing_id") != crossing_id:
            problems.append(f"{name}: the proof does not start at a manifest of crossing {crossing_id}")
        if prev is not None:
            previous = body.get("previous") or {}
            if body.get("sequence") != prev[2] + 1:
                problems.append(f"{name}: sequence {body.get('sequence')}, expected {prev[2] + 1}")
            if previous.get("sha256") != prev[1] or previous.get("name") != prev[0]:
                problems.append(f"{name}: does not link to {prev[0]} (a manifest changed, removed or out of order)")
        if body.get("crossing_id") == crossing_id:
            last_of_crossing = n
        if digest in anchored and anchored[digest] == body.get("sequence"):
            head, head_at = digest, n
        sequence = body.get("sequence")
        prev = (name, digest, sequence if isinstance(sequence, int) else -10)
    if head is None:
        problems.append("no manifest of the proof is anchored at the RAU (the site never sent its head, "
                        "or the chain was rewritten)")
    elif head_at < last_of_crossing:
        problems.append("the crossing's last manifest comes after the newest anchored head: not proven yet")
    return problems, head


def listed_files(chain: list[dict[str, Any]], crossing_id: str) -> dict[str, dict[str, Any]]:
    """The crossing's files by SHA-256, as its sealed manifests list them; a file a later
    tombstone of the same digest accounts for has `purged` set to that tombstone's name."""
    files: dict[str, dict[str, Any]] = {}
    by_path: dict[str, str] = {}
    for link in chain:
        body = link.get("body")
        if not isinstance(body, dict) or body.get("crossing_id") != crossing_id:
            continue
        if body.get("format") == FORMAT:
            for entry in body.get("files") or []:
                digest = str(entry.get("sha256"))
                files[digest] = {"path": str(entry.get("path")), "kind": str(entry.get("kind", "")),
                                 "sha256": digest, "size": int(entry.get("size", 0)),
                                 "manifest": str(link.get("name")), "purged": ""}
                by_path[str(entry.get("path"))] = digest
        elif body.get("format") == PURGE_FORMAT:
            for entry in body.get("purged") or []:
                digest = by_path.get(str(entry.get("path")), "")
                if digest and digest == entry.get("sha256"):
                    files[digest]["purged"] = str(link.get("name"))
    return files
