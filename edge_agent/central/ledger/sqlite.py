"""The ledger in one SQLite file (WAL, synchronous=FULL): the embedded default, for the
demo, the tests and a small administration. One hub worker serves it at a time: a
second is refused (`LedgerBusy`) rather than left to fight over the file's one writer
lock; readers (`central tail`, `sites`, `alerts`) open it alongside at any time.

Migrations are numbered by `PRAGMA user_version`; version 1 is the schema from before
versions existed (`IF NOT EXISTS`), so a ledger written by an older hub upgrades in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.central.ledger import (
    _UNFINISHED_REQUESTS,
    CROSSING_SPAN,
    DRAFT_COLUMNS,
    UNDATED,
    AlertPlanner,
    CrossingQuery,
    DeliveryRow,
    IngestResult,
    Ledger,
    LedgerBusy,
    LedgerError,
    command_row,
    draft_row,
    evidence_file_row,
    id_bound,
    iter_chunks,
    made_at,
    now_iso,
    parse_event,
    site_row,
    sqlite_path,
)

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: the ledger as the first hub wrote it
    """
    CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        stream TEXT NOT NULL,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_site_stream ON events (site, stream);
    CREATE TABLE IF NOT EXISTS sites (
        site TEXT PRIMARY KEY,
        state TEXT NOT NULL DEFAULT '',
        state_at TEXT NOT NULL DEFAULT '',
        health TEXT NOT NULL DEFAULT '',
        health_at TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE IF NOT EXISTS routed (
        reference TEXT NOT NULL,
        version INTEGER NOT NULL,
        site TEXT NOT NULL,
        routed_at TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (reference, version)
    );
    CREATE TABLE IF NOT EXISTS rejections (
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL
    );
    """,
    # 2: lookups by plate, reference and indicator; routed records published by the
    # lease holder; leases; the alerts' delivery log
    """
    CREATE INDEX events_tractor ON events (json_extract(payload, '$.tractor_plate'));
    CREATE INDEX events_trailer ON events (json_extract(payload, '$.trailer_plate'));
    CREATE INDEX events_reference ON events (json_extract(payload, '$.reference'));
    CREATE INDEX events_indicator ON events (json_extract(payload, '$.indicator_id'));
    ALTER TABLE routed ADD COLUMN published_at TEXT NOT NULL DEFAULT '';
    UPDATE routed SET published_at = routed_at;
    CREATE INDEX routed_pending ON routed (routed_at) WHERE published_at = '';
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_epoch REAL NOT NULL
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hit_id TEXT NOT NULL,
        site TEXT NOT NULL,
        indicator_id TEXT NOT NULL,
        target TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        sent_at TEXT NOT NULL DEFAULT '',
        sent_epoch REAL,
        due_epoch REAL NOT NULL,
        claimed_by TEXT NOT NULL DEFAULT '',
        claimed_until REAL NOT NULL DEFAULT 0,
        UNIQUE (hit_id, channel, recipient)
    );
    CREATE INDEX deliveries_due ON deliveries (due_epoch) WHERE status = 'pending';
    CREATE INDEX deliveries_recipient ON deliveries (recipient, sent_epoch) WHERE status = 'sent';
    """,
    # 3: signed bundles released through the hub, published once by the lease holder
    """
    CREATE TABLE bundles (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        retain INTEGER NOT NULL,
        label TEXT NOT NULL,
        payload BLOB NOT NULL,
        queued_at TEXT NOT NULL,
        published_at TEXT NOT NULL DEFAULT ''
    );
    """,
    # 4: downward commands from the RAU's console (channel raises), published once by the
    # lease holder; each site's newest event for the console's monitoring page
    """
    CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        body TEXT NOT NULL,
        by_user TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        published_at TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX commands_pending ON commands (queued_at) WHERE published_at = '';
    CREATE INDEX commands_site ON commands (site, queued_at);
    CREATE INDEX events_site_id ON events (site, id);
    CREATE INDEX events_stream_id ON events (stream, id);
    """,
    # 5: indicator-set drafts from the RAU console: drafted, submitted (signed by the
    # drafter), approved (signed by a second person and released as bundles)
    """
    CREATE TABLE indicator_drafts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        level TEXT NOT NULL,
        scope TEXT NOT NULL,
        document TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'draft',
        version INTEGER,
        signed TEXT NOT NULL DEFAULT '',
        drafted_by TEXT NOT NULL,
        drafted_at TEXT NOT NULL,
        edited_by TEXT NOT NULL DEFAULT '',
        edited_at TEXT NOT NULL DEFAULT '',
        submitted_by TEXT NOT NULL DEFAULT '',
        submitted_at TEXT NOT NULL DEFAULT '',
        approved_by TEXT NOT NULL DEFAULT '',
        approved_at TEXT NOT NULL DEFAULT ''
    );
    CREATE UNIQUE INDEX indicator_drafts_approved ON indicator_drafts (level, scope, version)
        WHERE status = 'approved';
    CREATE INDEX routed_at ON routed (routed_at);
    """,
    # 6: evidence on demand: the RAU's requests, the files a site's manifests list for
    # them with their state, and the uploaded chunks (in the ledger: one place to back up,
    # acknowledged only once committed, shared by every worker of a PostgreSQL ledger)
    """
    CREATE TABLE evidence_requests (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        crossing_id TEXT NOT NULL,
        by_user TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'requested',
        detail TEXT NOT NULL DEFAULT '',
        proof TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX evidence_requests_crossing ON evidence_requests (site, crossing_id);
    CREATE TABLE evidence_files (
        site TEXT NOT NULL,
        crossing_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        size INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        state TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (site, crossing_id, sha256)
    );
    CREATE INDEX evidence_files_digest ON evidence_files (site, sha256);
    CREATE TABLE evidence_chunks (
        site TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (site, sha256, idx)
    );
    CREATE TABLE cctv_snapshots (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        lane TEXT NOT NULL,
        by_user TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'requested',
        camera TEXT NOT NULL DEFAULT '',
        taken_at TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        data BLOB
    );
    CREATE INDEX cctv_snapshots_site ON cctv_snapshots (site, requested_at);
    """,
]

_DELIVERY_COLUMNS = ("id, hit_id, site, indicator_id, target, channel, recipient, subject, body, status, attempts,"
                     " error, created_at, sent_at")


class SqliteLedger(Ledger):
    def __init__(self, target: str | Path = "central.db") -> None:
        self.path = sqlite_path(target)
        self.url = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as err:
            raise LedgerError(f"cannot open the ledger {self.path}: {err}") from err

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise LedgerError(f"{self.path} is at schema version {version}; this hub knows {len(MIGRATIONS)}")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits first; the version is set in the script's own transaction.
            self.conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
            log.info("ledger_migrated path=%s version=%d", self.path, number)

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ the hub's writes

    def ingest(self, batch: list[tuple[str, str, bytes]], plan: AlertPlanner | None = None) -> IngestResult:
        result = IngestResult()
        now = now_iso()
        with self.conn:
            for site, stream, payload in batch:
                event_id, body = parse_event(site, stream, payload)
                if event_id is None:
                    result.rejected.append((f"{site}/{stream}", str(body), payload[:2000].decode("utf-8", "replace")))
                    continue
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO events (id, site, stream, received_at, payload) VALUES (?, ?, ?, ?, ?)",
                    (event_id, site, stream, now, payload.decode("utf-8")),
                )
                if cur.rowcount:
                    result.stored += 1
                else:
                    result.duplicates += 1
                # Duplicates are acknowledged too: the site is waiting to hear it.
                result.acks.setdefault(site, []).append(event_id)
                if plan is not None and stream == "hit" and isinstance(body, dict) and body.get("notify"):
                    result.alerts += self._plan(plan, site, body)
            for source, reason, raw in result.rejected:
                self.conn.execute("INSERT INTO rejections VALUES (?, ?, ?, ?)", (now, source, reason, raw))
        return result

    def _plan(self, plan: AlertPlanner, site: str, hit: dict[str, Any]) -> int:
        crossing = None
        if isinstance(hit.get("crossing"), str):
            row = self.conn.execute(
                "SELECT payload FROM events WHERE site = ? AND stream = 'crossing'"
                " AND json_extract(payload, '$.crossing') = ? LIMIT 1", (site, hit["crossing"])).fetchone()
            crossing = json.loads(row[0]) if row else None
        prearrival = self.routed_record(hit["reference"]) if isinstance(hit.get("reference"), str) else None
        planned = 0
        now_epoch, now = time.time(), now_iso()
        for d in plan(site, hit, prearrival, crossing):
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO deliveries (hit_id, site, indicator_id, target, channel, recipient, subject,"
                " body, status, error, created_at, due_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (d.hit_id, d.site, d.indicator_id, d.target, d.channel, d.recipient, d.subject, d.body, d.status,
                 d.error, now, now_epoch),
            )
            planned += cur.rowcount
        return planned

    def set_status(self, site: str, state: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO sites (site, state, state_at) VALUES (?, ?, ?)"
                " ON CONFLICT(site) DO UPDATE SET state = excluded.state, state_at = excluded.state_at",
                (site, state, now_iso()),
            )

    def set_health(self, site: str, health: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO sites (site, health, health_at) VALUES (?, ?, ?)"
                " ON CONFLICT(site) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
                (site, health, now_iso()),
            )

    def record_routed(self, reference: str, version: int, site: str, body: str) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO routed (reference, version, site, routed_at, body) VALUES (?, ?, ?, ?, ?)",
                (reference, version, site, now_iso(), body),
            )
        return bool(cur.rowcount)

    def routed_pending(self, limit: int = 500) -> list[tuple[str, int, str, str]]:
        return self.conn.execute(
            "SELECT reference, version, site, body FROM routed WHERE published_at = ''"
            " ORDER BY routed_at, reference LIMIT ?", (limit,)).fetchall()

    def mark_routed_published(self, keys: list[tuple[str, int]]) -> None:
        now = now_iso()
        with self.conn:
            self.conn.executemany("UPDATE routed SET published_at = ? WHERE reference = ? AND version = ?",
                                  [(now, ref, ver) for ref, ver in keys])

    def queue_bundle(self, sha256: str, topic: str, retain: bool, label: str, payload: bytes) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO bundles (sha256, topic, retain, label, payload, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (sha256, topic, int(retain), label, payload, now_iso()))
        return bool(cur.rowcount)

    def bundles_pending(self) -> list[tuple[int, str, bool, str, bytes]]:
        rows = self.conn.execute("SELECT id, topic, retain, label, payload FROM bundles WHERE published_at = ''"
                                 " ORDER BY id").fetchall()
        return [(r[0], r[1], bool(r[2]), r[3], bytes(r[4])) for r in rows]

    def mark_bundle_published(self, bundle_id: int) -> None:
        with self.conn:
            self.conn.execute("UPDATE bundles SET published_at = ? WHERE id = ?", (now_iso(), bundle_id))

    def bundles(self, limit: int = 20) -> list[tuple[str, str, str, str]]:
        return self.conn.execute("SELECT label, topic, queued_at, published_at FROM bundles ORDER BY id DESC LIMIT ?",
                                 (limit,)).fetchall()

    def queue_command(self, command_id: str, site: str, body: str, by: str) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO commands (id, site, body, by_user, queued_at) VALUES (?, ?, ?, ?, ?)",
                (command_id, site, body, by, now_iso()))
        return bool(cur.rowcount)

    def commands_pending(self, limit: int = 100) -> list[tuple[str, str, str]]:
        return self.conn.execute("SELECT id, site, body FROM commands WHERE published_at = ''"
                                 " ORDER BY queued_at, id LIMIT ?", (limit,)).fetchall()

    def mark_command_published(self, command_id: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE commands SET published_at = ? WHERE id = ?", (now_iso(), command_id))

    def commands(self, site: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = ("WHERE site = ? ", (site,)) if site else ("", ())
        rows = self.conn.execute(f"SELECT id, site, by_user, queued_at, published_at, body FROM commands {where}"
                                 "ORDER BY queued_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [command_row(*r) for r in rows]

    def reject(self, source: str, reason: str, raw: str) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO rejections VALUES (?, ?, ?, ?)", (now_iso(), source, reason, raw[:2000]))

    @contextlib.contextmanager
    def serving(self, holder: str) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".serving")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                raise LedgerBusy(
                    f"{other} already serves the SQLite ledger {self.path}: one hub worker per SQLite file;"
                    " run several workers on PostgreSQL (--db postgresql://...)") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"hub worker {holder} (pid {os.getpid()})".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        now = time.time()
        with self.conn:
            row = self.conn.execute(
                "INSERT INTO leases (name, holder, expires_epoch) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_epoch = excluded.expires_epoch"
                " WHERE leases.holder = excluded.holder OR leases.expires_epoch < ? RETURNING holder",
                (name, holder, now + ttl_s, now)).fetchone()
        return row is not None

    def release_lease(self, name: str, holder: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        row = self.conn.execute("SELECT holder FROM leases WHERE name = ? AND expires_epoch >= ?",
                                (name, time.time())).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ evidence on demand

    def add_evidence_request(self, request_id: str, site: str, crossing_id: str, by: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO evidence_requests (id, site, crossing_id, by_user, requested_at)"
                              " VALUES (?, ?, ?, ?, ?)", (request_id, site, crossing_id, by, now_iso()))

    def set_evidence_request(self, request_id: str, state: str, detail: str = "", proof: str = "") -> None:
        with self.conn:
            self.conn.execute("UPDATE evidence_requests SET state = ?, detail = ?, proof = ? WHERE id = ?",
                              (state, detail, proof, request_id))

    def reopen_evidence_requests(self, site: str) -> int:
        with self.conn:
            cur = self.conn.execute(f"UPDATE commands SET published_at = '' WHERE published_at != '' AND id IN"
                                    f" ({_UNFINISHED_REQUESTS.format(p='?')})", (site, site))
        return cur.rowcount

    def evidence_requests(self, site: str, crossing_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT id, by_user, requested_at, state, detail, proof FROM evidence_requests"
                                 " WHERE site = ? AND crossing_id = ? ORDER BY requested_at DESC, id DESC",
                                 (site, crossing_id)).fetchall()
        return [dict(zip(("id", "by", "requested_at", "state", "detail", "proof"), r, strict=True)) for r in rows]

    def evidence_anchored(self, site: str, digests: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in iter_chunks(digests, 500):
            marks = ",".join("?" * len(chunk))
            for digest, sequence in self.conn.execute(
                    "SELECT json_extract(payload, '$.sha256'), json_extract(payload, '$.sequence') FROM events"
                    f" WHERE site = ? AND stream = 'evidence_head' AND json_extract(payload, '$.sha256') IN ({marks})",
                    (site, *chunk)):
                found[digest] = sequence
        return found

    def put_evidence_file(self, site: str, crossing_id: str, entry: dict[str, Any], chunks: int, state: str,
                          detail: str = "") -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO evidence_files (site, crossing_id, sha256, path, kind, size, chunks, state, detail,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, crossing_id, sha256) DO UPDATE"
                " SET chunks = excluded.chunks, state = excluded.state, detail = excluded.detail,"
                " updated_at = excluded.updated_at WHERE evidence_files.state != 'verified'",
                (site, crossing_id, entry["sha256"], entry["path"], entry.get("kind", ""), int(entry.get("size", 0)),
                 chunks, state, detail, now_iso()))

    def set_evidence_file_state(self, site: str, sha256: str, state: str, detail: str = "") -> None:
        with self.conn:
            self.conn.execute("UPDATE evidence_files SET state = ?, detail = ?, updated_at = ?"
                              " WHERE site = ? AND sha256 = ?", (state, detail, now_iso(), site, sha256))

    def evidence_files(self, site: str, crossing_id: str = "", sha256: str = "") -> list[dict[str, Any]]:
        where, args = ("crossing_id = ?", crossing_id) if crossing_id else ("sha256 = ?", sha256)
        rows = self.conn.execute(
            "SELECT crossing_id, sha256, path, kind, size, chunks, (SELECT count(*) FROM evidence_chunks c"
            " WHERE c.site = f.site AND c.sha256 = f.sha256), state, detail, updated_at FROM evidence_files f"
            f" WHERE site = ? AND {where} ORDER BY path", (site, args)).fetchall()
        return [evidence_file_row(*r) for r in rows]

    def store_evidence_chunk(self, site: str, sha256: str, index: int, data: bytes) -> bool:
        with self.conn:
            cur = self.conn.execute("INSERT OR IGNORE INTO evidence_chunks (site, sha256, idx, data)"
                                    " VALUES (?, ?, ?, ?)", (site, sha256, index, data))
        return bool(cur.rowcount)

    def evidence_chunk_indexes(self, site: str, sha256: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT idx FROM evidence_chunks WHERE site = ? AND sha256 = ?"
                                                " ORDER BY idx", (site, sha256))]

    def evidence_content(self, site: str, sha256: str) -> bytes:
        return b"".join(bytes(r[0]) for r in self.conn.execute(
            "SELECT data FROM evidence_chunks WHERE site = ? AND sha256 = ? ORDER BY idx", (site, sha256)))

    def drop_evidence_chunks(self, site: str, sha256: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM evidence_chunks WHERE site = ? AND sha256 = ?", (site, sha256))

    def add_cctv_request(self, request_id: str, site: str, lane: str, by: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO cctv_snapshots (id, site, lane, by_user, requested_at)"
                              " VALUES (?, ?, ?, ?, ?)", (request_id, site, lane, by, now_iso()))

    def put_cctv_snapshot(self, request_id: str, site: str, state: str, camera: str = "", taken_at: str = "",
                          data: bytes = b"", detail: str = "") -> bool:
        with self.conn:
            cur = self.conn.execute(
                "UPDATE cctv_snapshots SET state = ?, camera = ?, taken_at = ?, data = ?, detail = ?"
                " WHERE id = ? AND site = ? AND state = 'requested'",
                (state, camera, taken_at, data or None, detail, request_id, site))
        return bool(cur.rowcount)

    def cctv_snapshots(self, site: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, lane, by_user, requested_at, state, camera, taken_at, detail, coalesce(length(data), 0)"
            " FROM cctv_snapshots WHERE site = ? ORDER BY requested_at DESC, id DESC LIMIT ?", (site, limit)).fetchall()
        return [dict(zip(("id", "lane", "by", "requested_at", "state", "camera", "taken_at", "detail", "bytes"), r,
                         strict=True)) for r in rows]

    def cctv_snapshot_data(self, site: str, request_id: str) -> bytes | None:
        row = self.conn.execute("SELECT data FROM cctv_snapshots WHERE id = ? AND site = ? AND state = 'received'",
                                (request_id, site)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    # ------------------------------------------------------------------ alerts

    def claim_deliveries(self, holder: str, limit: int, lease_s: float) -> list[DeliveryRow]:
        now = time.time()
        with self.conn:
            rows = self.conn.execute(
                f"UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id IN ("
                " SELECT id FROM deliveries WHERE status = 'pending' AND due_epoch <= ? AND claimed_until < ?"
                f" ORDER BY id LIMIT ?) RETURNING {_DELIVERY_COLUMNS}",
                (holder, now + lease_s, now, now, limit)).fetchall()
        return sorted((DeliveryRow(*r) for r in rows), key=lambda d: d.id)

    def finish_delivery(self, delivery_id: int, status: str, error: str = "", retry_in_s: float | None = None) -> None:
        now = time.time()
        with self.conn:
            if status == "pending":
                self.conn.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, error = ?, due_epoch = ?, claimed_until = 0"
                    " WHERE id = ?", (error, now + (retry_in_s or 0.0), delivery_id))
            else:
                attempted = 0 if status == "suppressed" else 1
                self.conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = attempts + ?, error = ?, sent_at = ?,"
                    " sent_epoch = ?, claimed_until = 0 WHERE id = ?",
                    (status, attempted, error, now_iso(), now if status == "sent" else None, delivery_id))

    def sent_since(self, recipient: str, window_s: float) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'sent' AND recipient = ? AND sent_epoch > ?",
            (recipient, time.time() - window_s)).fetchone()[0]

    def deliveries(self, *, failed_only: bool = False, limit: int = 100) -> list[DeliveryRow]:
        where = "WHERE status IN ('failed', 'suppressed')" if failed_only else ""
        rows = self.conn.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id DESC LIMIT ?",
                                 (limit,)).fetchall()
        return [DeliveryRow(*r) for r in rows]

    def delivery_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall())

    # ------------------------------------------------------------------ reads

    def count(self, site: str | None = None, stream: str | None = None) -> int:
        sql, args = "SELECT count(*) FROM events WHERE 1=1", []
        if site:
            sql, args = sql + " AND site = ?", [*args, site]
        if stream:
            sql, args = sql + " AND stream = ?", [*args, stream]
        return self.conn.execute(sql, args).fetchone()[0]

    def ids(self, site: str | None = None) -> list[str]:
        if site:
            return [r[0] for r in self.conn.execute("SELECT id FROM events WHERE site = ? ORDER BY id", (site,))]
        return [r[0] for r in self.conn.execute("SELECT id FROM events ORDER BY id")]

    def duplicates_stored(self) -> int:
        return 0  # the id is the primary key: SQLite cannot hold one twice

    def hits_after(self, position: int, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT rowid, site, payload FROM events WHERE stream = 'hit' AND rowid > ? ORDER BY rowid LIMIT ?",
            (position, limit),
        ).fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def max_rowid(self) -> int:
        return self.conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]

    def latest(self, site: str, stream: str, order_by: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT payload FROM events WHERE site = ? AND stream = ? ORDER BY json_extract(payload, ?) DESC LIMIT 1",
            (site, stream, f"$.{order_by}"),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def events_by(self, *, plate: str = "", reference: str = "", indicator_id: str = "",
                  limit: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        if plate:
            sql = ("SELECT site, stream, payload FROM events WHERE json_extract(payload, '$.tractor_plate') = ?1"
                   " UNION ALL SELECT site, stream, payload FROM events"
                   " WHERE json_extract(payload, '$.trailer_plate') = ?1")
            args: tuple[Any, ...] = (plate,)
        elif reference:
            sql, args = "SELECT site, stream, payload FROM events WHERE json_extract(payload, '$.reference') = ?", (
                reference,)
        elif indicator_id:
            sql, args = ("SELECT site, stream, payload FROM events WHERE json_extract(payload, '$.indicator_id') = ?",
                         (indicator_id,))
        else:
            return []
        newest_first = f"SELECT * FROM ({sql}) ORDER BY json_extract(payload, '$.id') DESC LIMIT {int(limit)}"
        rows = self.conn.execute(newest_first, args).fetchall()
        return [(site, stream, json.loads(payload)) for site, stream, payload in rows]

    def recent_hits(self, limit: int = 50, site: str = "") -> list[tuple[str, dict[str, Any]]]:
        where, args = ("AND site = ? ", (site,)) if site else ("", ())
        rows = self.conn.execute(f"SELECT site, payload FROM events WHERE stream = 'hit' {where}"
                                 "ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def find_crossings(self, query: CrossingQuery) -> list[tuple[str, dict[str, Any]]]:
        sql, args = "SELECT site, payload FROM events WHERE stream = 'crossing'", []
        if query.site:
            sql, args = sql + " AND site = ?", [*args, query.site]
        if query.since:
            sql, args = sql + " AND id >= ?", [*args, id_bound(query.since)]
        if query.until:
            sql, args = sql + " AND id < ?", [*args, id_bound(query.until)]
        if query.plate:
            sql += " AND (json_extract(payload, '$.tractor_plate') = ? OR json_extract(payload, '$.trailer_plate') = ?)"
            args += [query.plate, query.plate]
        if query.reference:
            sql, args = sql + " AND json_extract(payload, '$.reference') = ?", [*args, query.reference]
        if query.channel:
            sql, args = sql + " AND json_extract(payload, '$.channel') = ?", [*args, query.channel]
        if query.indicator_id:
            sql += " AND EXISTS (SELECT 1 FROM json_each(payload, '$.hits') WHERE value = ?)"
            args.append(query.indicator_id)
        if query.party:
            # The names are in the pre-arrival records the hub routed, not in the crossing.
            sql += (" AND json_extract(payload, '$.reference') IN (SELECT reference FROM routed WHERE"
                    " instr(lower(json_extract(body, '$.consignor.name')), ?) > 0"
                    " OR instr(lower(json_extract(body, '$.consignee.name')), ?) > 0)")
            args += [query.party.lower(), query.party.lower()]
        rows = self.conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, query.limit]).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def crossing_events(self, site: str, crossing_id: str) -> list[tuple[str, dict[str, Any]]]:
        sql = ("SELECT stream, payload FROM events WHERE site = ? AND coalesce(json_extract(payload, '$.crossing'),"
               " json_extract(payload, '$.crossing_id')) = ?")
        args: list[Any] = [site, crossing_id]
        began = made_at(crossing_id)
        if began != UNDATED:  # the crossing's own id says when it began: read only its window
            sql, args = sql + " AND id >= ? AND id < ?", [*args, id_bound(began), id_bound(began + CROSSING_SPAN)]
        rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def routed_record(self, reference: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT body FROM routed WHERE reference = ? ORDER BY version DESC LIMIT 1",
                                (reference,)).fetchone()
        return json.loads(row[0]) if row else None

    def sites(self) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT site, state, state_at, health, health_at FROM sites ORDER BY site")
        return [site_row(*r) for r in cur.fetchall()]

    def last_event_at(self, site: str) -> datetime | None:
        row = self.conn.execute("SELECT max(id) FROM events WHERE site = ?", (site,)).fetchone()
        when = made_at(row[0]) if row and row[0] else None
        return None if when is None or when == UNDATED else when

    # ------------------------------------------------------------------ indicator drafts

    def create_draft(self, level: str, scope: str, document: str, by: str) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO indicator_drafts (level, scope, document, drafted_by, drafted_at) VALUES (?, ?, ?, ?, ?)",
                (level, scope, document, by, now_iso()))
        return int(cur.lastrowid or 0)

    def update_draft(self, draft_id: int, document: str, by: str) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "UPDATE indicator_drafts SET document = ?, edited_by = ?, edited_at = ?"
                " WHERE id = ? AND status = 'draft'",
                (document, by, now_iso(), draft_id))
        return bool(cur.rowcount)

    def submit_draft(self, draft_id: int, by: str, version: int, signed: str) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "UPDATE indicator_drafts SET status = 'submitted', version = ?, signed = ?, submitted_by = ?,"
                " submitted_at = ? WHERE id = ? AND status = 'draft'", (version, signed, by, now_iso(), draft_id))
        return bool(cur.rowcount)

    def approve_draft(self, draft_id: int, by: str, signed: str) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "UPDATE indicator_drafts SET status = 'approved', signed = ?, approved_by = ?, approved_at = ?"
                " WHERE id = ? AND status = 'submitted' AND NOT EXISTS (SELECT 1 FROM indicator_drafts a"
                " WHERE a.status = 'approved' AND a.level = indicator_drafts.level"
                " AND a.scope = indicator_drafts.scope AND a.version >= indicator_drafts.version)",
                (signed, by, now_iso(), draft_id))
        return bool(cur.rowcount)

    def draft(self, draft_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(f"SELECT {', '.join(DRAFT_COLUMNS)} FROM indicator_drafts WHERE id = ?",
                                (draft_id,)).fetchone()
        return draft_row(row) if row else None

    def drafts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(f"SELECT {', '.join(DRAFT_COLUMNS)} FROM indicator_drafts ORDER BY id DESC LIMIT ?",
                                 (limit,)).fetchall()
        return [draft_row(r) for r in rows]

    def latest_full_bundle(self, topic: str) -> bytes | None:
        row = self.conn.execute("SELECT payload FROM bundles WHERE topic = ? AND retain = 1 ORDER BY id DESC LIMIT 1",
                                (topic,)).fetchone()
        return bytes(row[0]) if row else None

    def routed_since(self, since: datetime, limit: int = 100_000) -> list[tuple[str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT site, body FROM routed r WHERE routed_at >= ? AND version = (SELECT max(version) FROM routed v"
            " WHERE v.reference = r.reference) ORDER BY routed_at DESC LIMIT ?",
            (since.astimezone(UTC).isoformat(timespec="milliseconds"), limit)).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]
    # ------------------------------------------------------------------ effectiveness (issue 16, item 4)

    def _range(self, stream: str, since: datetime, until: datetime, site: str) -> tuple[str, list[Any]]:
        where, args = "stream = ? AND id >= ? AND id < ?", [stream, id_bound(since), id_bound(until)]
        if site:
            where, args = where + " AND site = ?", [*args, site]
        return where, args

    def hit_crossings(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        where, args = self._range("hit", since, until, site)
        rows = self.conn.execute(
            "SELECT site, json_extract(payload, '$.indicator_id') AS indicator,"
            " coalesce(json_extract(payload, '$.level'), '') AS level,"
            " coalesce(nullif(json_extract(payload, '$.crossing'), ''),"
            "          'assessment:' || coalesce(json_extract(payload, '$.assessment'), '')) AS crossing,"
            f" min(id) FROM events WHERE {where} AND indicator IS NOT NULL"
            " GROUP BY site, indicator, level, crossing", args).fetchall()
        return [{"site": r[0], "indicator_id": str(r[1]), "level": str(r[2]), "crossing_id": str(r[3]),
                 "made_at": made_at(r[4])} for r in rows]

    def control_outcomes(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        where, args = self._range("control_act", since, until + CROSSING_SPAN, site)
        rows = self.conn.execute(
            "SELECT site, json_extract(payload, '$.crossing_id') AS crossing,"
            " max(json_extract(payload, '$.result') = 'positive')"
            f" FROM events WHERE {where} AND crossing IS NOT NULL GROUP BY site, crossing", args).fetchall()
        return [{"site": r[0], "crossing_id": str(r[1]), "result": "positive" if r[2] else "negative"} for r in rows]

    def channel_counts(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        where, args = self._range("crossing", since, until, site)
        rows = self.conn.execute(
            "SELECT site, coalesce(json_extract(payload, '$.channel'), '') AS channel,"
            " coalesce(json_extract(payload, '$.random_selected'), 0) = 1 AS picked, count(*)"
            f" FROM events WHERE {where} GROUP BY site, channel, picked", args).fetchall()
        return [{"site": r[0], "channel": str(r[1]), "random_selected": bool(r[2]), "count": r[3]} for r in rows]

    def rejection_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM rejections").fetchone()[0]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal"))
                   if p.exists())

    def backup(self, destination: str | Path) -> None:
        """A consistent copy of the live file through SQLite's online backup (the hub may keep writing)."""
        target = sqlite3.connect(str(destination))
        try:
            with target:
                self.conn.backup(target)
        finally:
            target.close()

