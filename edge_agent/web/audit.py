"""The console's audit log: every officer action, refusal and login, hash-chained.

Each entry stores the SHA-256 of the previous entry's hash and its own canonical JSON,
so removing, reordering or editing any row breaks the chain from that row on;
`edge-agent audit verify` walks it. The log lives in the console's own SQLite file
(not the customs database): it must also record what never became a customs event
(refused actions, failed logins), and the console can write it without waiting for the
core loop. The customs events themselves are still stored by the core with their user
and reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.ownership import read_only

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)
"""
OUTCOMES = ("done", "refused", "rejected", "failed")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    user: str
    role: str
    action: str
    outcome: str  # done | refused (no permission, bad CSRF) | rejected (invalid form) | failed
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Anchor:
    """An entry's hash as the customs database (and the RAU) received it."""

    seq: int
    hash: str
    at: str = ""

    @classmethod
    def from_payload(cls, body: dict[str, Any]) -> Anchor:
        """From the `audit_anchored` event or `audit_anchor` outbox row that carried it."""
        return cls(int(body["seq"]), str(body["hash"]), str(body.get("at", "")))


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    bad_seq: int | None = None
    problem: str = ""
    anchor: Anchor | None = None  # the anchor the log was checked against


def entry_hash(prev_hash: str, seq: int, at: str, user: str, role: str, action: str, outcome: str,
               reason: str, details_json: str) -> str:
    """The chain link: SHA-256 over the previous hash and this entry's canonical JSON."""
    body = json.dumps([seq, at, user, role, action, outcome, reason, details_json],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class AuditLog:
    """Append-only, hash-chained; safe to call from any thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def append(self, user: str, role: str, action: str, outcome: str, reason: str = "",
               details: dict[str, Any] | None = None) -> AuditEntry:
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {OUTCOMES}")
        details_json = json.dumps(details or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                                  default=str)
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            # BEGIN IMMEDIATE: a second process (the CLI) appending at once cannot fork the chain.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                last = self._conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                digest = entry_hash(prev, seq, at, user, role, action, outcome, reason, details_json)
                self._conn.execute(
                    "INSERT INTO audit (seq, at, user, role, action, outcome, reason, details, prev_hash, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, at, user, role, action, outcome, reason, details_json, prev, digest],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        log.info("audit_appended seq=%d user=%s action=%s outcome=%s", seq, user, action, outcome)
        return AuditEntry(seq, at, user, role, action, outcome, reason, json.loads(details_json), prev, digest)

    def entries(self, limit: int = 200, action: str | None = None) -> list[AuditEntry]:
        where, args = ("WHERE action = ?", [action]) if action else ("", [])
        rows = self._conn.execute(
            f"SELECT seq, at, user, role, action, outcome, reason, details, prev_hash, hash FROM audit {where}"
            " ORDER BY seq DESC LIMIT ?", [*args, limit]).fetchall()
        return [AuditEntry(*r[:7], json.loads(r[7]), r[8], r[9]) for r in rows]

    def head(self) -> Anchor | None:
        """The newest entry's sequence number and hash, or None for an empty log."""
        row = self._conn.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return Anchor(*row) if row else None

    def count(self, outcome: str | None = None) -> int:
        if outcome:
            return self._conn.execute("SELECT count(*) FROM audit WHERE outcome = ?", [outcome]).fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM audit").fetchone()[0]


def verify(path: str | Path, anchor: Anchor | None = None) -> Verification:
    """Walk the chain from the first entry; the first broken link is reported.

    The chain alone cannot show that its newest entries were cut off: what remains still
    links up. With an `anchor` (an entry's hash recorded elsewhere) the log must reach
    that entry and hold the same hash there.
    """
    path = Path(path)
    if not path.exists():
        return Verification(False, 0, None, f"no audit log at {path}")
    try:
        with read_only(path) as conn:
            rows = conn.execute(
                "SELECT seq, at, user, role, action, outcome, reason, details, prev_hash, hash FROM audit ORDER BY seq"
            )
            return verify_rows(rows, anchor)
    except sqlite3.Error as err:
        return Verification(False, 0, None, f"cannot read the audit log: {err}")


def verify_rows(rows, anchor: Anchor | None = None) -> Verification:
    """The chain check itself, over (seq, at, user, role, action, outcome, reason, details, prev, hash) rows."""
    prev, expected_seq, n = GENESIS, 1, 0
    for seq, at, user, role, action, outcome, reason, details, prev_hash, digest in rows:
        if seq != expected_seq:
            return Verification(False, n, seq, f"entry {expected_seq} is missing (next is {seq})", anchor)
        if prev_hash != prev:
            return Verification(False, n, seq, "does not link to the entry before it", anchor)
        if entry_hash(prev, seq, at, user, role, action, outcome, reason, details) != digest:
            return Verification(False, n, seq, "its content does not match its hash (edited)", anchor)
        if anchor is not None and seq == anchor.seq and digest != anchor.hash:
            return Verification(False, n, seq, f"differs from the hash anchored at {anchor.at} (rewritten)", anchor)
        prev, expected_seq, n = digest, seq + 1, n + 1
    if anchor is not None and n < anchor.seq:
        return Verification(False, n, None, f"entries {n + 1} to {anchor.seq} were anchored at {anchor.at} but the"
                                            f" log ends at entry {n} (cut short)", anchor)
    return Verification(True, n, anchor=anchor)
