"""The chain proof of one crossing's evidence, checked away from the site: by the hub
when a site uploads it, and by a court clerk on an export (docs/evidence.md).

A proof is the crossing's manifests, each followed in the site's chain by the manifests
up to one whose digest the site anchored at the RAU as it sealed (the `evidence_head`
stream; every manifest is sent, so usually the crossing's own manifests are anchors).
It holds when each manifest matches its own digest, consecutive ones link (sequence + 1,
the previous name and digest), and each of the crossing's manifests is anchored or
linked to a later anchored one: a forger would have to break SHA-256, or the hub's
record, to change a file, a manifest or the order. Pure: values in, problems out.

    problems, head = check_chain(chain, "01J...", {"9f2c...": 41})
    files = listed_files(chain, "01J...")   # {sha256: entry}, purged ones with their tombstone
"""

from __future__ import annotations

from typing import Any

from edge_agent.evidence.manifest import FORMAT, FORMATS, PURGE_FORMAT, body_sha256, safe_part


def check_chain(chain: list[dict[str, Any]], crossing_id: str,
                anchored: dict[str, int]) -> tuple[list[str], str | None]:
    """(problems, the newest anchored digest in the proof). `chain`: [{"name", "body"}] in
    chain order; `anchored`: digest -> sequence of the heads the site sent to the RAU.

    The proof may leave out manifests of other crossings (a crossing sealed, then purged a
    month later): manifests with consecutive sequence numbers must link, a gap starts a
    new run, and each manifest of the crossing must be anchored itself or followed, in
    its run, by an anchored one. As every manifest's digest is sent to the RAU, the
    crossing's own manifests are usually their own anchors and the proof stays small."""
    problems: list[str] = []
    prev: tuple[str, str, int] | None = None  # name, digest, sequence
    unproven: list[str] = []  # the crossing's manifests not yet followed by an anchor in their run
    seen_crossing = False
    head: str | None = None
    for link in chain:
        name, body = str(link.get("name", "")), link.get("body")
        if not isinstance(body, dict):
            problems.append(f"{name}: not a manifest")
            prev = None
            continue
        digest = body_sha256(body)
        sequence = body.get("sequence") if isinstance(body.get("sequence"), int) else None
        if body.get("format") not in FORMATS:
            problems.append(f"{name}: unknown format {body.get('format')!r}")
        if body.get("manifest_sha256") != digest:
            problems.append(f"{name}: edited (content does not match its manifest_sha256)")
        if not name.endswith(f"_{safe_part(str(body.get('crossing_id', '')))}.json"):
            problems.append(f"{name}: file name does not name its crossing")
        if sequence is None:
            problems.append(f"{name}: no sequence number")
        elif prev is not None and sequence <= prev[2]:
            problems.append(f"{name}: sequence {sequence} after {prev[2]} (out of order)")
        elif prev is not None and sequence == prev[2] + 1:
            previous = body.get("previous") or {}
            if previous.get("sha256") != prev[1] or previous.get("name") != prev[0]:
                problems.append(f"{name}: does not link to {prev[0]} (a manifest changed, removed or out of order)")
        elif unproven:
            # A gap ends the run: what it left unanchored stays unproven.
            problems += [f"{n}: not anchored at the RAU, nor followed by an anchored manifest" for n in unproven]
            unproven = []
        if body.get("crossing_id") == crossing_id:
            seen_crossing = True
            unproven.append(name)
        if sequence is not None and anchored.get(digest) == sequence:
            head, unproven = digest, []
        prev = (name, digest, sequence) if sequence is not None else None
    if not seen_crossing:
        problems.append(f"no manifest of crossing {crossing_id} in the proof")
    problems += [f"{n}: not anchored at the RAU, nor followed by an anchored manifest (the site's head has "
                 "not reached the hub yet, or the chain was rewritten)" for n in unproven]
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
