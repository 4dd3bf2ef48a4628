"""What a site sends the RAU when it asks for a crossing's evidence (docs/evidence.md,
"Evidence on demand"): the crossing's files as its manifests list them, and the proof
(`proof.check_chain`): the crossing's manifests, each anchored at the hub as it was
sealed, and up to `TAIL` manifests after its last one, so the proof stays small however
old the crossing.

    plan = upload_plan(root, "01J...")   # None when no manifest names the crossing
    plan["files"]   # [{"path", "kind", "sha256", "size", "state": "present"|"purged"|"missing", "tombstone"}]
    plan["chain"]   # [{"name", "body"}, ...] in chain order: the crossing's manifests and the few after

A file retention deleted is `purged` with its tombstone manifest's name (the tombstone
is in the chain), never `missing`; `missing` is a listed file gone without one. Files
are not hashed here: the hub checks every byte it receives against the manifest.
Reading manifests is file I/O: call it from the uploader's thread, not the core's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_agent.evidence.manifest import FORMAT, PURGE_FORMAT, manifest_paths, safe_part

TAIL = 64  # manifests sent after the crossing's last one: enough for a head still in the site's outbox


def upload_plan(root: Path, crossing_id: str) -> dict[str, Any] | None:
    root = Path(root)
    paths = manifest_paths(root)
    suffix = f"_{safe_part(crossing_id)}.json"
    own = [i for i, p in enumerate(paths) if p.name.endswith(suffix)]
    if not own:
        return None
    # The crossing's manifests (each normally anchored at the RAU itself), and the few
    # after its last one, in case its own head has not reached the hub yet.
    wanted = sorted(set(own) | set(range(own[-1] + 1, min(len(paths), own[-1] + 1 + TAIL))))
    chain: list[dict[str, Any]] = []
    listed: dict[str, dict[str, Any]] = {}
    for path in (paths[i] for i in wanted):
        try:
            body = json.loads(path.read_bytes())
        except ValueError:
            body = {}  # sent as it is: the hub finds the broken link and refuses the upload
        chain.append({"name": path.name, "body": body})
        if not isinstance(body, dict) or body.get("crossing_id") != crossing_id:
            continue
        if body.get("format") == FORMAT:
            for entry in body.get("files") or []:
                listed[str(entry.get("path"))] = {"path": str(entry.get("path")), "kind": str(entry.get("kind", "")),
                                                  "sha256": str(entry.get("sha256")), "size": int(entry.get("size", 0)),
                                                  "state": "present", "tombstone": ""}
        elif body.get("format") == PURGE_FORMAT:
            for entry in body.get("purged") or []:
                item = listed.get(str(entry.get("path")))
                if item is not None and item["sha256"] == entry.get("sha256"):
                    item.update(state="purged", tombstone=path.name)
    files = sorted(listed.values(), key=lambda f: f["path"])
    base = root.resolve()
    for item in files:
        target = (root / item["path"]).resolve()
        # A path out of the evidence folder (an edited manifest) is never read, only reported.
        if item["state"] == "present" and (not target.is_relative_to(base) or not target.is_file()):
            item["state"] = "missing"
    return {"crossing_id": crossing_id, "files": files, "chain": chain}
