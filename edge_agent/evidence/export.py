"""One crossing's evidence as one archive for prosecutors, and its offline check
(docs/evidence.md, "Export for prosecutors").

The archive is a ZIP, stored without compression so every byte is as received:

    index.json              what is inside: site, crossing, the anchored heads (each manifest of the proof
                            the site anchored at the RAU, the newest named), each member's SHA-256,
                            and its own digest (index_sha256, over its canonical JSON without that field)
    summary.html            the printable summary: the files, their digests and states, the chain
    manifests/<name>        the chain proof: the crossing's manifests, each anchored or linked to an anchored one
    files/<path>            each verified file, under the path its manifest lists

`verify_export(path)` (the clerk's `edge-agent evidence verify-export ARCHIVE`) checks
the ZIP's own checksums, the index's digest, every member's digest against the index,
the chain proof (`proof.check_chain`) against the anchors the index names, and
each file against its manifest entry: one changed byte anywhere fails it. The anchored
head's digest is printed, for the clerk to compare with the RAU's record.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.evidence.manifest import body_sha256, canonical_json
from edge_agent.evidence.proof import check_chain, listed_files

FORMAT = "bcp-evidence-export/1"
INDEX = "index.json"
SUMMARY = "summary.html"


def build_export(*, site: str, crossing_id: str, chain: list[dict[str, Any]], head: dict[str, Any],
                 files: dict[str, bytes], states: dict[str, str], exported_by: str,
                 anchors: dict[str, int] | None = None) -> bytes:
    """The archive's bytes. `chain`: [{"name", "body"}] checked at upload; `head`: the
    newest anchored head {"sha256", "sequence"}; `anchors`: digest -> sequence of every
    manifest of the proof anchored at the RAU (default: the head alone); `files`: SHA-256
    -> content of each verified file; `states`: SHA-256 -> state of every listed file."""
    listed = listed_files(chain, crossing_id)
    anchored = anchors or {head["sha256"]: head["sequence"]}
    members: dict[str, bytes] = {}
    for link in chain:
        members[f"manifests/{link['name']}"] = canonical_json(link["body"], indent=True)
    for digest, content in sorted(files.items()):
        members[f"files/{listed[digest]['path']}"] = content
    entries = [{**{k: v for k, v in entry.items() if k in ("path", "kind", "sha256", "size", "manifest", "purged")},
                "state": states.get(digest, "requested"),
                "member": f"files/{entry['path']}" if digest in files else ""}
               for digest, entry in sorted(listed.items(), key=lambda kv: kv[1]["path"])]
    exported_at = datetime.now(UTC).isoformat(timespec="seconds")
    members[SUMMARY] = _summary(site, crossing_id, head, entries, chain, exported_at, exported_by).encode("utf-8")
    index: dict[str, Any] = {
        "format": FORMAT, "site": site, "crossing_id": crossing_id, "exported_at": exported_at,
        "exported_by": exported_by, "anchored_head": head, "files": entries,
        "anchors": [{"sha256": d, "sequence": q} for d, q in sorted(anchored.items())],
        "chain": [link["name"] for link in chain],
        "members": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())},
    }
    index["index_sha256"] = body_sha256({k: v for k, v in index.items()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(INDEX, canonical_json(index, indent=True))
        for name, data in sorted(members.items()):
            archive.writestr(name, data)
    return out.getvalue()


def verify_export(path: Path) -> tuple[list[str], dict[str, Any]]:
    """(problems, the index) of an archive; no problems means every byte is as exported."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return [f"{bad}: damaged (its ZIP checksum fails)"], {}
            members = {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return [f"{path}: not a readable archive ({err})"], {}
    try:
        index = json.loads(members.pop(INDEX))
        if not isinstance(index, dict):
            raise TypeError("not an object")
    except (KeyError, ValueError, TypeError) as err:
        return [f"{INDEX}: missing or unreadable ({err})"], {}
    problems: list[str] = []
    if index.get("format") != FORMAT:
        problems.append(f"{INDEX}: unknown format {index.get('format')!r}")
    if index.get("index_sha256") != body_sha256({k: v for k, v in index.items() if k != "index_sha256"}):
        problems.append(f"{INDEX}: edited (content does not match its index_sha256)")
    listed_members = index.get("members") if isinstance(index.get("members"), dict) else {}
    for name, data in sorted(members.items()):
        expected = listed_members.get(name)
        if expected is None:
            problems.append(f"{name}: not listed in the index (added)")
        elif hashlib.sha256(data).hexdigest() != expected:
            problems.append(f"{name}: changed (SHA-256 differs from the index)")
    problems += [f"{name}: listed in the index but not in the archive (removed)"
                 for name in sorted(set(listed_members) - set(members))]
    chain = []
    for name in index.get("chain") or []:
        try:
            chain.append({"name": name, "body": json.loads(members[f"manifests/{name}"])})
        except (KeyError, ValueError):
            problems.append(f"manifests/{name}: missing or unreadable")
    head = index.get("anchored_head") if isinstance(index.get("anchored_head"), dict) else {}
    crossing_id = str(index.get("crossing_id", ""))
    anchors = {str(a.get("sha256")): a.get("sequence") for a in index.get("anchors") or [] if isinstance(a, dict)}
    chain_problems, reached = check_chain(chain, crossing_id, anchors)
    problems += chain_problems
    if reached != head.get("sha256") or (chain and reached != chain[-1]["body"].get("manifest_sha256")):
        problems.append("the chain does not end at the anchored head the index names")
    listed = listed_files(chain, crossing_id)
    for entry in index.get("files") or []:
        member = entry.get("member")
        if not member:
            continue
        sealed = listed.get(str(entry.get("sha256")))
        data = members.get(member)
        if sealed is None or member != f"files/{sealed['path']}":
            problems.append(f"{member}: no manifest of the crossing lists it")
        elif data is None or hashlib.sha256(data).hexdigest() != sealed["sha256"] or len(data) != sealed["size"]:
            problems.append(f"{member}: differs from its manifest entry")
    return problems, index


def _summary(site: str, crossing_id: str, head: dict[str, Any], entries: list[dict[str, Any]],
             chain: list[dict[str, Any]], exported_at: str, exported_by: str) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(f['path'])}</td><td>{e(f['state'])}</td><td>{f['size']}</td>"
                   f"<td><code>{e(f['sha256'])}</code></td></tr>" for f in entries)
    links = "".join(f"<li><code>{e(str(link['name']))}</code> sequence {e(str(link['body'].get('sequence')))}, "
                    f"<code>{e(str(link['body'].get('manifest_sha256')))}</code></li>" for link in chain)
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>Evidence {e(crossing_id)}</title>"
            f"<h1>Evidence of crossing {e(crossing_id)} at {e(site)}</h1>"
            f"<p>Exported {e(exported_at)} by {e(exported_by)}. The chain below ends at the manifest the site "
            f"anchored at the RAU: sequence {e(str(head.get('sequence')))}, SHA-256 "
            f"<code>{e(str(head.get('sha256')))}</code> (received {e(str(head.get('at', '')))}).</p>"
            f"<h2>Files</h2><table border=1><tr><th>path</th><th>state</th><th>bytes</th><th>SHA-256</th></tr>"
            f"{rows}</table><h2>Manifest chain</h2><ol>{links}</ol>"
            "<p>To check this archive: <code>edge-agent evidence verify-export ARCHIVE</code>; it fails on any "
            "changed byte and prints the anchored head to compare with the RAU's record.</p></html>\n")
