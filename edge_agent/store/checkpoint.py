"""Checkpoints of the write-ahead log on their own thread, not in the core's commits.

In WAL mode SQLite copies the log back into the database (a checkpoint) from inside
whichever commit crosses `wal_autocheckpoint` pages: the core's. That commit then also
writes about a megabyte and fsyncs the database file, so now and then a lane's event
waited behind the copy (the longest stalls of the core loop measured while a backlog
drained, benchmarks/sync.py). Here a thread with its own connection runs a PASSIVE
checkpoint every second: it copies what no reader still needs and waits for no one,
and the core's commits only append to the log.

The writer keeps a far higher automatic threshold as a backstop, so a checkpointer
that stopped (or a reader holding an old snapshot for ever) cannot grow the log
without bound; it only brings the copy back into the core's commits.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 16_384  # 16 MiB of 1 KiB pages: only reached if this thread falls behind
SQLITE_DEFAULT_PAGES = 1000


class Checkpointer:
    """`start(writer)` takes checkpoints off the writer's commits; `stop()` gives them back."""

    def __init__(self, path: str | Path, interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self.checkpoints = 0  # PASSIVE checkpoints run
        self.log_pages_copied = 0  # of the log as it stood at the last checkpoint
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: sqlite3.Connection | None = None

    def start(self, writer: sqlite3.Connection) -> Checkpointer:
        self._writer = writer
        writer.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):  # the writer closed first: nothing to hand back
                self._writer.execute(f"PRAGMA wal_autocheckpoint={SQLITE_DEFAULT_PAGES}")
            self._writer = None

    def _run(self) -> None:
        conn = sqlite3.connect(str(self.path), timeout=1, check_same_thread=False)
        failing = False
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    busy, _log_pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as err:
                    self.failures += 1
                    if not failing:  # one line per change of state, not one a second
                        log.warning("checkpoint_failed error=%s: the core's commits checkpoint meanwhile", err)
                    failing = True
                    continue
                if failing:
                    log.info("checkpoint_recovered")
                    failing = False
                self.checkpoints += 1
                self.log_pages_copied = max(0, copied)
        finally:
            conn.close()
