"""Evidence files and their hash-chained manifests, one manifest per crossing.

Layout under the evidence root (the site's `data_dir/evidence`):

    crossings/<crossing_id>/<kind>/<name>          snapshots, clips, scale frames, ANPR payloads
    manifests/<YYYY-MM-DD>/<id>_<crossing_id>.json one per seal; <id> sorts by time (edge_agent.ids)

A manifest lists the SHA-256 (FIPS 180-4) and size of every file of its crossing, the
wall clock when it was sealed with the clock's measured offset, its sequence number,
and the digest of the manifest before it. Its own digest (`manifest_sha256`) is the
SHA-256 of its canonical JSON without that field, so:

- a changed or deleted file no longer matches its entry;
- an edited manifest no longer matches its own digest, or, if the digest was
  recomputed, no longer matches the link in the manifest after it;
- a removed, inserted or reordered manifest breaks the sequence and the links;
- files written but never sealed show up as unsealed (a removed last manifest).

Retention deletes files only through `purge`, which first appends a tombstone manifest
(format /2: `"files": []` and `"purged": [{path, sha256, size, class, reason,
purged_at}]`, the digest taken from the file as it is deleted) to the same chain, so the
verifier tells a purge from a deletion: a listed file that is gone with a later
tombstone of the same digest was purged; gone without one, it is missing.

The last manifest of the chain can only be anchored outside the box: the core should
publish each `Manifest.sha256` to the RAU with the crossing, and `verify --head` checks
that the anchored manifest is still in the chain.

SD cards wear with writes, so evidence files are written once (exclusive create, never
rewritten) and not fsynced; only manifests are fsynced (file and directory), because a
manifest is the claim that the files existed with those digests at that time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.evidence.budget import MediaBudget
from edge_agent.evidence.classes import file_class
from edge_agent.ids import new_id, timestamp_ms

log = logging.getLogger(__name__)

FORMAT = "bcp-evidence-manifest/1"
# A manifest that records purged files (tombstones): /1 plus a "purged" list. Seals stay
# /1, byte for byte, so a verifier of /1 still reads every seal; it reports a tombstone
# as an unknown format rather than reading it as an empty seal.
PURGE_FORMAT = "bcp-evidence-manifest/2"
FORMATS = (FORMAT, PURGE_FORMAT)
CROSSINGS_DIR = "crossings"
MANIFESTS_DIR = "manifests"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Manifest:
    """A sealed manifest: where it is, its digest (the chain link) and its content."""

    path: Path
    sequence: int
    crossing_id: str
    sha256: str
    body: dict[str, Any]

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.body["files"]


class EvidenceStore:
    """Writes evidence files and seals them into hash-chained manifests; thread-safe.

        store = EvidenceStore(Path("/var/lib/edge-agent/evidence"))
        store.add_file(crossing_id, "snapshot", "arrival_cam1.jpg", jpeg_bytes)
        store.add_bytes(crossing_id, "scale", "frames.hex", raw)
        manifest = store.seal(crossing_id, clock_offset_s=0.012)
    """

    def __init__(self, root: Path, budget: MediaBudget | None = None) -> None:
        self.root = Path(root)
        self.budget = budget  # media past its cap are refused (the disk budget)
        # Called with each manifest written (seal or tombstone), outside the chain's lock:
        # the agent sends its digest to the RAU, where no one on this board can reach it.
        self.on_manifest: Callable[[Manifest], None] | None = None
        (self.root / CROSSINGS_DIR).mkdir(parents=True, exist_ok=True)
        (self.root / MANIFESTS_DIR).mkdir(parents=True, exist_ok=True)
        self.files_written = 0
        self.bytes_written = 0
        self.manifests_sealed = 0
        self.files_purged = 0
        self.bytes_purged = 0
        self._lock = threading.RLock()  # seal holds it across _append
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._sealed_paths: dict[str, set[str]] = {}
        self._last = last_manifest(self.root)

    # ------------------------------------------------------------------ files

    def add_file(self, crossing_id: str, kind: str, name: str, data: bytes) -> Path | None:
        """Write `data` once as crossings/<crossing>/<kind>/<name> and remember its digest.

        An existing file is never replaced: a second file of the same name gets a suffix.
        None when the media budget is at its cap and this is a picture or a clip (counted
        in `budget.refused`; raw payloads are always written).
        """
        if not self._admit(kind, name):
            return None
        target_dir = self._crossing_dir(crossing_id) / safe_part(kind)
        target_dir.mkdir(parents=True, exist_ok=True)
        path = _create_exclusive(target_dir, safe_part(name), data)
        self._remember(crossing_id, kind, path, hashlib.sha256(data).hexdigest(), len(data))
        return path

    # ANPR payloads and raw scale frames come as bytes too; one name for readers of the core.
    add_bytes = add_file

    def add_path(self, crossing_id: str, kind: str, name: str, source: Path) -> Path | None:
        """Move an already written file (a clip from VideoWriter) into the crossing.

        `source` must be on the same file system (use `scratch_dir()`), so this is a rename,
        not a second write. None, with `source` left to the caller, when the media budget
        refuses it.
        """
        if not self._admit(kind, name):
            return None
        target_dir = self._crossing_dir(crossing_id) / safe_part(kind)
        target_dir.mkdir(parents=True, exist_ok=True)
        digest, size = file_sha256(source)
        path = _unused_name(target_dir, safe_part(name))
        os.link(source, path)  # fails rather than overwrite, unlike rename
        os.unlink(source)
        self._remember(crossing_id, kind, path, digest, size)
        return path

    def scratch_dir(self) -> Path:
        """A directory on the evidence file system for files still being written."""
        path = self.root / ".scratch"
        path.mkdir(exist_ok=True)
        return path

    # ------------------------------------------------------------------ sealing

    def seal(self, crossing_id: str, clock_offset_s: float | None = None) -> Manifest:
        """Write the next manifest of the chain for the files of `crossing_id`.

        Files found in the crossing's folder that this process did not add (written
        before a restart) are included too, hashed from disk and marked `recovered`.
        Sealing the same crossing again later seals only what was added since.
        """
        with self._lock:
            entries = list(self._pending.pop(crossing_id, []))
            sealed = self._sealed_paths.setdefault(crossing_id, set())
            known = sealed | {e["path"] for e in entries}
            for path in sorted(self._crossing_dir(crossing_id).rglob("*")):
                rel = path.relative_to(self.root).as_posix()
                if path.is_file() and rel not in known:
                    digest, size = file_sha256(path)
                    entries.append({"path": rel, "kind": path.parent.name, "sha256": digest, "size": size,
                                    "added_at": _mtime_utc(path), "recovered": True})
            manifest = self._append(crossing_id, FORMAT, {"files": sorted(entries, key=lambda e: e["path"])},
                                    clock_offset_s)
            sealed.update(e["path"] for e in entries)
        log.info("evidence_sealed crossing=%s sequence=%s files=%s sha256=%s",
                 crossing_id, manifest.sequence, len(entries), manifest.sha256[:16])
        return manifest

    # ------------------------------------------------------------------ purging

    def purge(self, crossing_id: str, files: list[dict[str, Any]]) -> Manifest | None:
        """Delete files of a crossing, after appending their tombstone to the chain.

        `files`: {"path" (relative to the root), "class", "reason"}. Each file is hashed as
        it is now (a file changed since its seal gets a tombstone whose digest differs,
        which the verifier reports), the tombstone manifest is written and fsynced, and
        only then are the files deleted: a crash between the two leaves a tombstone for a
        file still there, which the next purge deletes (and tombstones again). None when
        nothing was left to purge; a crossing with files not yet sealed is not touched.
        """
        with self._lock:
            if self._pending.get(crossing_id):
                log.warning("evidence_purge_skipped crossing=%s reason=unsealed files", crossing_id)
                return None
        base = self._crossing_dir(crossing_id).resolve()
        entries, targets = [], []
        for item in files:
            target = (self.root / item["path"]).resolve()
            if not target.is_relative_to(base) or not target.is_file():
                continue  # outside the crossing, or already gone
            digest, size = file_sha256(target)
            entries.append({"path": target.relative_to(self.root.resolve()).as_posix(), "sha256": digest,
                            "size": size, "class": item["class"], "reason": item["reason"],
                            "purged_at": datetime.now(UTC).isoformat(timespec="milliseconds")})
            targets.append((target, size, item["class"]))
        if not entries:
            return None
        manifest = self._append(crossing_id, PURGE_FORMAT, {"files": [],
                                                            "purged": sorted(entries, key=lambda e: e["path"])})
        for target, size, klass in targets:
            target.unlink(missing_ok=True)
            self.files_purged += 1
            self.bytes_purged += size
            if klass == "media" and self.budget is not None:
                self.budget.remove(size)
        self._prune_dirs(base)
        with self._lock:
            sealed = self._sealed_paths.get(crossing_id)
            if sealed is not None:
                sealed.difference_update(e["path"] for e in entries)
                if not sealed:
                    del self._sealed_paths[crossing_id]  # a year of crossings must not stay in memory
        log.info("evidence_purged crossing=%s files=%d bytes=%d sha256=%s", crossing_id, len(entries),
                 sum(e["size"] for e in entries), manifest.sha256[:16])
        return manifest

    @property
    def head(self) -> Manifest | None:
        """The last manifest of the chain (the one to anchor at the RAU)."""
        return self._last

    def pending(self, crossing_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pending.get(crossing_id, []))

    # ------------------------------------------------------------------ internals

    def _append(self, crossing_id: str, fmt: str, content: dict[str, Any],
                clock_offset_s: float | None = None) -> Manifest:
        """Write the next manifest of the chain (seal or tombstone), durably."""
        with self._lock:
            now = datetime.now(UTC)
            sequence = self._last.sequence + 1 if self._last else 1
            body: dict[str, Any] = {
                "format": fmt,
                "sequence": sequence,
                "crossing_id": crossing_id,
                "sealed_at": now.isoformat(timespec="milliseconds"),
                "clock": {"source": "system", "offset_s": clock_offset_s},
                "previous": None if self._last is None else {
                    "name": self._last.path.name, "sha256": self._last.sha256, "sequence": self._last.sequence,
                },
                **content,
            }
            digest = body_sha256(body)
            body["manifest_sha256"] = digest
            ident = new_id(self._next_ms())
            day = datetime.fromtimestamp(timestamp_ms(ident) / 1000, UTC).strftime("%Y-%m-%d")
            folder = self.root / MANIFESTS_DIR / day
            folder.mkdir(exist_ok=True)
            path = folder / f"{ident}_{safe_part(crossing_id)}.json"
            _write_durably(path, canonical_json(body, indent=True))
            manifest = Manifest(path, sequence, crossing_id, digest, body)
            self._last = manifest
            self.manifests_sealed += 1
        if self.on_manifest is not None:
            try:
                self.on_manifest(manifest)
            except Exception:  # the chain is written; a failed anchor is the next head's to make up
                log.exception("evidence_on_manifest_failed sequence=%s", sequence)
        return manifest

    def admits(self, kind: str, name: str = "") -> bool:
        """Would a file of this kind be written now? Asked before costly work (a clip's
        encoding); a refusal is counted in the budget like a refused write."""
        return self._admit(kind, name)

    def _admit(self, kind: str, name: str) -> bool:
        return self.budget is None or file_class(kind, name) != "media" or self.budget.admit()

    def _prune_dirs(self, base: Path) -> None:
        # Empty kind folders, then the crossing's: an empty crossing costs a directory entry each.
        for folder in sorted((p for p in base.glob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()

    def _next_ms(self) -> int:
        # Names must sort in chain order even if the clock stepped back (NTP, a dead RTC
        # battery): never name a manifest earlier than the last one.
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        if self._last is None:
            return now_ms
        try:
            last_ms = timestamp_ms(self._last.path.name.split("_", 1)[0])
        except ValueError:
            return now_ms
        return max(now_ms, last_ms + 1)

    def _crossing_dir(self, crossing_id: str) -> Path:
        return self.root / CROSSINGS_DIR / safe_part(crossing_id)

    def _remember(self, crossing_id: str, kind: str, path: Path, digest: str, size: int) -> None:
        entry = {
            "path": path.relative_to(self.root).as_posix(),
            "kind": safe_part(kind),
            "sha256": digest,
            "size": size,
            "added_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        with self._lock:
            self._pending.setdefault(crossing_id, []).append(entry)
            self.files_written += 1
            self.bytes_written += size
        if self.budget is not None and file_class(entry["kind"], path.name) == "media":
            self.budget.add(size)


def canonical_json(body: dict[str, Any], indent: bool = False) -> bytes:
    """Sorted keys, fixed separators: the same dict always gives the same bytes."""
    if indent:
        return (json.dumps(body, sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode("ascii")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def body_sha256(body: dict[str, Any]) -> str:
    """A manifest's digest: over its canonical compact JSON, without the digest field."""
    return hashlib.sha256(canonical_json({k: v for k, v in body.items() if k != "manifest_sha256"})).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def manifest_paths(root: Path) -> list[Path]:
    """Every manifest file in chain order (day folder, then time-sortable name)."""
    base = Path(root) / MANIFESTS_DIR
    if not base.is_dir():
        return []
    return sorted(p for p in base.glob("*/*.json") if p.is_file())


def last_manifest(root: Path) -> Manifest | None:
    """The newest manifest, read so a restarted agent continues the chain.

    Only the newest day folder is listed, not years of them. An unreadable last
    manifest is linked by the digest of its bytes, so the chain goes on and the
    verifier reports the broken one.
    """
    base = Path(root) / MANIFESTS_DIR
    days = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    for day in reversed(days):
        names = sorted(day.glob("*.json"))
        if not names:
            continue
        path = names[-1]
        raw = path.read_bytes()
        try:
            body = json.loads(raw)
            return Manifest(path, int(body["sequence"]), str(body["crossing_id"]), str(body["manifest_sha256"]), body)
        except (ValueError, KeyError, TypeError):
            log.error("evidence_last_manifest_unreadable path=%s", path)
            sequence = _sequence_guess(days)
            return Manifest(path, sequence, "", hashlib.sha256(raw).hexdigest(), {})
    return None


def _sequence_guess(days: list[Path]) -> int:
    # The broken manifest took one number; continue after the count of manifests so far.
    return sum(1 for day in days for _ in day.glob("*.json"))


def safe_part(text: str) -> str:
    """A single safe path component: no separators, no dot-dot, nothing hidden."""
    cleaned = re.sub(r"\.{2,}", "_", _SAFE.sub("_", text)).strip(".") or "_"
    return cleaned[:120]


def _unused_name(folder: Path, name: str) -> Path:
    path = folder / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while path.exists():
        path = folder / f"{stem}.{n}{suffix}"
        n += 1
    return path


def _create_exclusive(folder: Path, name: str, data: bytes) -> Path:
    stem, suffix = os.path.splitext(name)
    n = 0
    while True:
        path = folder / (name if n == 0 else f"{stem}.{n}{suffix}")
        try:
            with open(path, "xb") as f:
                f.write(data)
            return path
        except FileExistsError:
            n += 1


def _write_durably(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes it private; auditors read manifests
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # never replaces an existing manifest
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _mtime_utc(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="milliseconds")
