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

The last manifest of the chain can only be anchored outside the box: the core should
publish each `Manifest.sha256` to the RAU with the crossing, and `verify --head` checks
that the anchored manifest is still in the chain.

SD cards wear with writes, so evidence files are written once (exclusive create, never
rewritten) and not fsynced; only manifests are fsynced (file and directory), because a
manifest is the claim that the files existed with those digests at that time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.ids import new_id, timestamp_ms

log = logging.getLogger(__name__)

FORMAT = "bcp-evidence-manifest/1"
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

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / CROSSINGS_DIR).mkdir(parents=True, exist_ok=True)
        (self.root / MANIFESTS_DIR).mkdir(parents=True, exist_ok=True)
        self.files_written = 0
        self.bytes_written = 0
        self.manifests_sealed = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._sealed_paths: dict[str, set[str]] = {}
        self._last = last_manifest(self.root)

    # ------------------------------------------------------------------ files

    def add_file(self, crossing_id: str, kind: str, name: str, data: bytes) -> Path:
        """Write `data` once as crossings/<crossing>/<kind>/<name> and remember its digest.

        An existing file is never replaced: a second file of the same name gets a suffix.
        """
        target_dir = self._crossing_dir(crossing_id) / safe_part(kind)
        target_dir.mkdir(parents=True, exist_ok=True)
        path = _create_exclusive(target_dir, safe_part(name), data)
        self._remember(crossing_id, kind, path, hashlib.sha256(data).hexdigest(), len(data))
        return path

    # ANPR payloads and raw scale frames come as bytes too; one name for readers of the core.
    add_bytes = add_file

    def add_path(self, crossing_id: str, kind: str, name: str, source: Path) -> Path:
        """Move an already written file (a clip from VideoWriter) into the crossing.

        `source` must be on the same file system (use `scratch_dir()`), so this is a rename,
        not a second write.
        """
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
            now = datetime.now(UTC)
            sequence = self._last.sequence + 1 if self._last else 1
            body: dict[str, Any] = {
                "format": FORMAT,
                "sequence": sequence,
                "crossing_id": crossing_id,
                "sealed_at": now.isoformat(timespec="milliseconds"),
                "clock": {"source": "system", "offset_s": clock_offset_s},
                "previous": None if self._last is None else {
                    "name": self._last.path.name, "sha256": self._last.sha256, "sequence": self._last.sequence,
                },
                "files": sorted(entries, key=lambda e: e["path"]),
            }
            digest = body_sha256(body)
            body["manifest_sha256"] = digest
            ident = new_id(self._next_ms())
            day = datetime.fromtimestamp(timestamp_ms(ident) / 1000, UTC).strftime("%Y-%m-%d")
            folder = self.root / MANIFESTS_DIR / day
            folder.mkdir(exist_ok=True)
            path = folder / f"{ident}_{safe_part(crossing_id)}.json"
            _write_durably(path, canonical_json(body, indent=True))
            sealed.update(e["path"] for e in entries)
            manifest = Manifest(path, sequence, crossing_id, digest, body)
            self._last = manifest
            self.manifests_sealed += 1
        log.info("evidence_sealed crossing=%s sequence=%s files=%s sha256=%s",
                 crossing_id, sequence, len(entries), digest[:16])
        return manifest

    @property
    def head(self) -> Manifest | None:
        """The last manifest of the chain (the one to anchor at the RAU)."""
        return self._last

    def pending(self, crossing_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pending.get(crossing_id, []))

    # ------------------------------------------------------------------ internals

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
