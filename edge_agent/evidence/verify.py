"""Check an evidence folder against its manifest chain; every problem, one line each.

Reads files and manifests, writes nothing. What is checked (see manifest.py for the
format):

- each manifest parses and matches its own digest (an edit shows);
- sequence numbers run 1, 2, 3 ... in name order, and each manifest links to the
  digest of the one before it (a removed, inserted, reordered or renamed manifest shows);
- every listed file exists with the listed SHA-256 and size (a deleted or changed file
  shows);
- a file that no manifest lists in the folder of a crossing that has a manifest shows at
  once (planted after the seal, or added after it and not yet sealed again); in the
  folder of a crossing with no manifest it shows once older than `unsealed_grace_s` (a
  crossing still open is younger), and before that it is a notice, not a problem:
  unlisted files of a crossing whose manifest was removed are what that leaves behind;
- a tombstone (a manifest of format /2 with a "purged" list, written by retention
  before it deletes) accounts for a listed file that is gone: such a file is reported
  as purged, apart from the problems (`purges`), when the tombstone comes later in the
  chain with the same SHA-256. A file gone without a tombstone is still missing
  (deleted by hand, or tampering); a tombstone whose digest differs from the listed
  file (the file was changed before it was purged, or the tombstone is forged) and a
  tombstone for a file no earlier manifest lists are problems;
- optionally, a manifest digest anchored elsewhere (published to the RAU) is in the chain.
  Without one, a forger who removed the newest manifests or recomputed every manifest
  after a replaced file leaves a chain that holds: the CLI says so (LOCAL-ONLY).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge_agent.evidence.manifest import (
    CROSSINGS_DIR,
    FORMATS,
    PURGE_FORMAT,
    body_sha256,
    file_sha256,
    manifest_paths,
    safe_part,
)


def verify_evidence(
    root: Path,
    *,
    expected_head: str | None = None,
    unsealed_grace_s: float = 24 * 3600.0,
    now_s: float | None = None,
    notices: list[str] | None = None,
    purges: list[str] | None = None,
) -> list[str]:
    """Return every problem found under `root`; an empty list means the chain holds.

    Unlisted files of crossings still open (within the grace) go to `notices` if given,
    files purged by retention (each with its later tombstone) to `purges`."""
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        return [f"{root}: no such evidence folder"]
    listed: set[str] = set()
    gone: dict[str, str] = {}  # listed files not on disk: path -> the "missing" problem, until a tombstone
    digest_of: dict[str, str] = {}  # every listed file's SHA-256, by path
    purged_out: list[str] = []
    taken_back: set[str] = set()  # "missing" problems a later tombstone accounts for
    sealed: set[str] = set()  # the crossings' folder names that a manifest covers
    digests: set[str] = set()
    prev_name: str | None = None
    prev_digest: str | None = None
    prev_sequence: int | None = 0
    for path in manifest_paths(root):
        name = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError) as err:
            problems.append(f"{name}: unreadable manifest ({err})")
            prev_name, prev_digest, prev_sequence = name, None, None
            continue
        problems += _check_manifest(name, path.name, body, prev_name, prev_digest, prev_sequence)
        actual = body_sha256(body)
        digests.add(actual)
        sealed.add(safe_part(str(body.get("crossing_id", ""))))
        for entry in body.get("files") or []:
            problems += _check_file(root, name, entry, listed, gone, digest_of)
        if body.get("format") == PURGE_FORMAT:
            problems += _check_purges(root, name, body.get("purged"), gone, digest_of, purged_out, taken_back)
        elif "purged" in body:
            problems.append(f"{name}: a purged list in a manifest of format {body.get('format')!r}")
        sequence = body.get("sequence")
        prev_name, prev_digest = name, actual
        prev_sequence = sequence if isinstance(sequence, int) else None
    problems = [p for p in problems if p not in taken_back]
    if purges is not None:
        purges += purged_out
    problems += _unsealed(root, listed, sealed, unsealed_grace_s, time.time() if now_s is None else now_s,
                          notices if notices is not None else [])
    if expected_head:
        head = expected_head.strip().lower()
        if not any(d.startswith(head) for d in digests) or len(head) < 12:
            problems.append(f"anchored manifest {head} is not in the chain (manifests removed or replaced)")
    return problems


def _check_manifest(
    name: str, file_name: str, body: dict, prev_name: str | None, prev_digest: str | None, prev_sequence: int | None
) -> list[str]:
    problems = []
    if body.get("format") not in FORMATS:
        problems.append(f"{name}: unknown format {body.get('format')!r}")
    if body.get("manifest_sha256") != body_sha256(body):
        problems.append(f"{name}: edited (content does not match its manifest_sha256)")
    crossing = str(body.get("crossing_id", ""))
    if not file_name.endswith(f"_{safe_part(crossing)}.json"):
        problems.append(f"{name}: file name does not name its crossing {crossing!r} (renamed)")
    sequence = body.get("sequence")
    if prev_sequence is not None and sequence != prev_sequence + 1:
        problems.append(f"{name}: sequence {sequence}, expected {prev_sequence + 1} "
                        "(a manifest removed, inserted or out of order)")
    previous = body.get("previous")
    if prev_name is None:
        if previous is not None:
            problems.append(f"{name}: first manifest found but it links to {previous.get('name')!r} "
                            "(earlier manifests removed)")
    elif not isinstance(previous, dict):
        problems.append(f"{name}: no link to the previous manifest {prev_name}")
    elif prev_digest is not None and previous.get("sha256") != prev_digest:
        problems.append(f"{name}: link does not match the previous manifest {prev_name} "
                        "(a manifest changed, removed or out of order)")
    elif previous.get("name") != Path(prev_name).name:
        problems.append(f"{name}: links to {previous.get('name')!r} but follows {Path(prev_name).name} (renamed)")
    return problems


def _check_file(root: Path, manifest: str, entry: dict, listed: set[str], gone: dict[str, str],
                digest_of: dict[str, str]) -> list[str]:
    rel = str(entry.get("path", ""))
    target = (root / rel).resolve()
    if not rel or not target.is_relative_to(root.resolve()):
        return [f"{manifest}: file entry with a bad path {rel!r}"]
    listed.add(rel)
    digest_of[rel] = str(entry.get("sha256"))
    if not target.is_file():
        # Missing unless a later tombstone says it was purged (taken back at the end).
        gone[rel] = f"missing file: {rel} (listed in {manifest})"
        return [gone[rel]]
    digest, size = file_sha256(target)
    if digest != entry.get("sha256") or size != entry.get("size"):
        return [f"changed file: {rel} (SHA-256 differs from {manifest})"]
    return []


def _check_purges(root: Path, manifest: str, purged: object, gone: dict[str, str],
                  digest_of: dict[str, str], purged_out: list[str], taken_back: set[str]) -> list[str]:
    if not isinstance(purged, list):
        return [f"{manifest}: a tombstone without a purged list"]
    problems = []
    for entry in purged:
        rel = str(entry.get("path", "")) if isinstance(entry, dict) else ""
        if not rel:
            problems.append(f"{manifest}: a tombstone entry with no path")
            continue
        listed_digest = digest_of.get(rel)
        if listed_digest is None:
            problems.append(f"tombstone for a file no earlier manifest lists: {rel} (in {manifest})")
            continue
        if entry.get("sha256") != listed_digest:
            problems.append(f"tombstone differs from the listed file: {rel} (SHA-256 in {manifest} is not the "
                            "sealed one: changed before the purge, or a forged tombstone)")
            continue
        if rel in gone:
            taken_back.add(gone.pop(rel))
        still = (root / rel).is_file()
        purged_out.append(f"purged: {rel} class={entry.get('class', '?')} reason={entry.get('reason', '?')} "
                          f"at={entry.get('purged_at', '?')} (tombstone {manifest})"
                          + (" - still on disk: the purge did not finish" if still else ""))
    return problems


def _unsealed(root: Path, listed: set[str], sealed: set[str], grace_s: float, now_s: float,
              notices: list[str]) -> list[str]:
    problems = []
    base = root / CROSSINGS_DIR
    if not base.is_dir():
        return problems
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel in listed:
            continue
        parts = path.relative_to(base).parts
        if len(parts) == 1:  # no crossing's folder: the store never writes there
            problems.append(f"unlisted file: {rel} (outside any crossing's folder)")
        elif parts[0] in sealed:
            problems.append(f"unlisted file: {rel} (in sealed crossing {parts[0]}, but no manifest lists it)")
        elif now_s - path.stat().st_mtime >= grace_s:
            problems.append(f"unsealed file: {rel} (no manifest lists it)")
        else:
            notices.append(f"open crossing: {rel} (not sealed yet)")
    return problems
