"""The retention worker: one thread that deletes evidence files past their period, and
the oldest media past the disk budget, in small batches beside the lanes.

Every `interval_s` (and at once when the media budget passes its high-water mark, or a
command asks) it lists the evidence folders (crossings/<id>/<kind>/<file>), reads those
crossings' states from agent.db through a read-only connection, lets the pure planner
(storage/retention.py) say what goes, and deletes it `batch_files` at a time with a short
pause between batches, each crossing's files after their tombstone is in the manifest
chain (EvidenceStore.purge). It writes nothing in agent.db: the rows are the core's
(storage/records.py). A crossing still open is never touched.

    worker = RetentionWorker(evidence_store, data_dir / "agent.db", Periods(), budget).start()
    report = worker.run_once(dry_run=True)     # what would go, and why
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from edge_agent.errors import StoreError
from edge_agent.evidence.budget import MediaBudget
from edge_agent.evidence.classes import file_class
from edge_agent.evidence.manifest import CROSSINGS_DIR, EvidenceStore
from edge_agent.models import utcnow
from edge_agent.storage.retention import CrossingState, EvidenceFile, Periods, Purge, class_of, plan_purges
from edge_agent.store import Store

log = logging.getLogger(__name__)

REQUEST_FILE = "purge-requested"  # a command's "purge now" to the running agent
STATUS_FILE = "retention-status.json"  # the last run and the next, for `storage status`
POLL_S = 2.0  # how often the thread looks for that file


@dataclass
class PurgeReport:
    """One run: what was on disk, what went (or would go), per class and reason."""

    at: datetime
    dry_run: bool
    purges: list[Purge] = field(default_factory=list)
    bytes_by_class: Counter = field(default_factory=Counter)  # media, raw, flagged, unknown: on disk before
    files_by_class: Counter = field(default_factory=Counter)
    purged_files: Counter = field(default_factory=Counter)  # "<class>/<reason>" -> files
    purged_bytes: Counter = field(default_factory=Counter)
    tombstones: int = 0
    media_bytes: int = 0  # pictures and clips of every class: what the budget counts

    def summary(self) -> dict:
        return {"at": self.at.isoformat(timespec="seconds"), "dry_run": self.dry_run,
                "bytes_by_class": dict(self.bytes_by_class), "files_by_class": dict(self.files_by_class),
                "purged_files": dict(self.purged_files), "purged_bytes": dict(self.purged_bytes),
                "tombstones": self.tombstones, "media_bytes": self.media_bytes}


class RetentionWorker:
    def __init__(self, evidence: EvidenceStore, db_path: Path, periods: Periods,
                 budget: MediaBudget | None = None, *, interval_s: float = 600.0, batch_files: int = 100,
                 pause_s: float = 0.5, clock: Callable[[], datetime] = utcnow,
                 request_dir: Path | None = None) -> None:
        self.evidence = evidence
        self.db_path = Path(db_path)
        self.periods = periods
        self.budget = budget
        self.interval_s = interval_s
        self.batch_files = max(1, batch_files)
        self.pause_s = pause_s
        self.clock = clock
        self.request_file = Path(request_dir) / REQUEST_FILE if request_dir else None
        self.status_file = Path(request_dir) / STATUS_FILE if request_dir else None
        # Called after each run: the core's records step starts a pass, now that the files
        # it waits for are gone (before the run, it would pass over those crossings).
        self.after_run: Callable[[], None] | None = None
        self.last: PurgeReport | None = None
        self.next_run: datetime | None = None
        self.totals: Counter[str] = Counter()  # "<class>/<reason>" -> files purged since start
        self.runs = 0
        self.failures = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if budget is not None and budget.on_high_water is None:
            budget.on_high_water = self._wake.set

    # ------------------------------------------------------------------ thread

    def start(self, first_delay_s: float = 5.0) -> RetentionWorker:
        self.next_run = self.clock() + timedelta(seconds=first_delay_s)
        self._thread = threading.Thread(target=self._run, args=(first_delay_s,), name="retention", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wake(self) -> None:
        self._wake.set()

    def health(self) -> dict:
        return {"runs": self.runs, "failures": self.failures, "purged": dict(self.totals),
                "next_run": self.next_run.isoformat(timespec="seconds") if self.next_run else "",
                "last": self.last.summary() if self.last else {},
                "budget": self.budget.snapshot() if self.budget else {}}

    def _run(self, first_delay_s: float) -> None:
        deadline = time.monotonic() + first_delay_s
        while not self._stop.is_set():
            woken = self._wake.wait(max(0.0, min(POLL_S, deadline - time.monotonic())))
            if self._stop.is_set():
                return
            requested = self._take_request()
            if not (woken or requested or time.monotonic() >= deadline):
                continue
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # a bad file or a locked database must not end the thread
                self.failures += 1
                log.exception("retention_run_failed")
            if self.after_run is not None:
                self.after_run()
            deadline = time.monotonic() + self.interval_s
            self.next_run = self.clock() + timedelta(seconds=self.interval_s)
            self._write_status()

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        tmp = self.status_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.health(), default=str), encoding="utf-8")
            tmp.replace(self.status_file)
        except OSError as err:  # a full disk: the status waits for the next run
            log.warning("retention_status_not_written error=%s", err)

    def _take_request(self) -> bool:
        if self.request_file is None or not self.request_file.exists():
            return False
        self.request_file.unlink(missing_ok=True)
        log.info("retention_purge_requested")
        return True

    # ------------------------------------------------------------------ one run

    def run_once(self, now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
        """Plan with the clock (or `now`), then delete in batches unless `dry_run`."""
        now = now or self.clock()
        report = PurgeReport(at=now, dry_run=dry_run)
        files = scan_files(self.evidence.root)
        states = self._states(sorted({f.crossing_id for f in files}))
        media_bytes = 0
        for f in files:
            state = states.get(f.crossing_id)
            klass = class_of(state, f) if state else "unknown"
            report.bytes_by_class[klass] += f.size
            report.files_by_class[klass] += 1
            if file_class(f.kind, f.path) == "media":
                media_bytes += f.size
        report.media_bytes = media_bytes
        if self.budget is not None and not dry_run:
            self.budget.recount(media_bytes)
        budget = self.budget
        report.purges = plan_purges(states, files, self.periods, now, media_bytes=media_bytes,
                                    high_water_bytes=budget.high_water_bytes if budget else 0,
                                    cap_bytes=budget.cap_bytes if budget else 0)
        for purge in report.purges:
            key = f"{purge.data_class}/{purge.reason}"
            report.purged_files[key] += 1
            report.purged_bytes[key] += purge.size
        if not dry_run:
            self._delete(report)
            self.runs += 1
            self.totals.update(report.purged_files)
        self.last = report
        if report.purges:
            log.info("retention_run dry_run=%s files=%d bytes=%d by_class=%s", dry_run, len(report.purges),
                     sum(p.size for p in report.purges), dict(report.purged_files))
        return report

    def _states(self, crossing_ids: list[str]) -> dict[str, CrossingState]:
        if not crossing_ids:
            return {}
        try:
            store = Store.reader(self.db_path)
        except StoreError:
            return {}  # no database yet: nothing is known, nothing goes
        try:
            return {row["id"]: CrossingState.from_row(row) for row in store.retention_states(crossing_ids)}
        finally:
            store.close()

    def _delete(self, report: PurgeReport) -> None:
        batch: dict[str, list[dict]] = {}
        in_batch = 0
        for purge in report.purges:
            if self._stop.is_set():
                return
            batch.setdefault(purge.crossing_id, []).append(
                {"path": purge.path, "class": purge.data_class, "reason": purge.reason})
            in_batch += 1
            if in_batch >= self.batch_files:
                report.tombstones += self._purge_batch(batch)
                batch, in_batch = {}, 0
                self._stop.wait(self.pause_s)  # the SD card serves the lanes' writes in between
        report.tombstones += self._purge_batch(batch)

    def _purge_batch(self, batch: dict[str, list[dict]]) -> int:
        written = 0
        for crossing_id, entries in batch.items():
            if self.evidence.purge(crossing_id, entries) is not None:
                written += 1
        return written


def scan_files(root: Path) -> list[EvidenceFile]:
    """Every file under crossings/<crossing>/<kind>/ with its size (os.scandir: one
    directory read per folder, sizes from the entries)."""
    base = Path(root) / CROSSINGS_DIR
    out: list[EvidenceFile] = []
    try:
        crossings = list(os.scandir(base))
    except FileNotFoundError:
        return out
    for crossing in crossings:
        if not crossing.is_dir(follow_symlinks=False):
            continue
        for kind in _entries(crossing.path):
            if not kind.is_dir(follow_symlinks=False):
                continue
            for entry in _entries(kind.path):
                try:
                    if entry.is_file(follow_symlinks=False):
                        size = entry.stat(follow_symlinks=False).st_size
                    else:
                        continue
                except FileNotFoundError:
                    continue
                out.append(EvidenceFile(crossing.name, f"{CROSSINGS_DIR}/{crossing.name}/{kind.name}/{entry.name}",
                                        kind.name, size))
    return out


def _entries(path: str) -> list[os.DirEntry]:
    # A folder purged or pruned while the scan runs is simply empty.
    try:
        return list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def has_files(root: Path, crossing_id: str) -> bool:
    """Whether the crossing's evidence folder still holds anything (retention keeps the
    rows until it does not)."""
    return (Path(root) / CROSSINGS_DIR / crossing_id).is_dir()


def read_status(data_dir: Path) -> dict:
    """What the running agent's worker last wrote ({} when none)."""
    try:
        return json.loads((Path(data_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def request_purge(data_dir: Path) -> Path:
    """Ask the running agent's worker for a purge now (it looks every POLL_S)."""
    path = Path(data_dir) / REQUEST_FILE
    path.write_text("now\n", encoding="ascii")
    return path


def media_cap_bytes(evidence_max_mb: float, evidence_max_pct: float, root: Path) -> int:
    """The media cap: `evidence_max_mb`, or (0) that share of the evidence file system."""
    if evidence_max_mb > 0:
        return int(evidence_max_mb * 2**20)
    Path(root).mkdir(parents=True, exist_ok=True)
    return int(shutil.disk_usage(root).total * evidence_max_pct / 100)
