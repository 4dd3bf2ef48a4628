"""The agent's SQLite database: schema, forward migrations, and the queries.

One writer: only the core loop's thread holds a writable `Store`. Other threads and
commands (the sync publisher, the console, `edge-agent status`) open `Store.reader()`,
which WAL lets them do without blocking the writer.

Durability: customs events are committed with `synchronous=FULL`. WAL with NORMAL may
lose the last commits on power loss, and these boards run on generators; an event is
acted on only after its commit returns, so a lost commit would be an acted-on but
forgotten crossing. The measured cost (see benchmarks/lane_latency.py) is well inside
the lane's budget.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.errors import StoreError
from edge_agent.ids import new_id
from edge_agent.models import Assessment, PreArrival, Rejected
from edge_agent.ownership import give_to_directory_owner

log = logging.getLogger(__name__)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _migration_1(db: sqlite_utils.Database) -> None:
    db["events"].create(
        {"id": str, "kind": str, "lane": str, "at": str, "source": str, "body": str}, pk="id"
    )
    db["events"].create_index(["lane", "at"])
    db["rejections"].create(
        {"id": str, "source": str, "reason": str, "raw": str, "at": str}, pk="id"
    )
    db["prearrivals"].create(
        {
            "reference": str,
            "version": int,
            "tractor_plate": str,
            "trailer_plate": str,
            "status": str,  # pending | arrived | expired
            "crossing_id": str,
            "received_at": str,
            "expires_at": str,
            "body": str,
        },
        pk="reference",
    )
    db["prearrivals"].create_index(["status"])
    db["crossings"].create(
        {
            "id": str,
            "lane": str,
            "started_at": str,
            "ended_at": str,
            "phase": str,
            "outcome": str,
            "tractor_plate": str,
            "trailer_plate": str,
            "reference": str,
            "measured_kg": float,
            "channel": str,
            "body": str,
        },
        pk="id",
    )
    db["crossings"].create_index(["lane", "started_at"])
    db["assessments"].create(
        {
            "id": str,
            "crossing_id": str,
            "lane": str,
            "reference": str,
            "channel": str,
            "random_selected": int,
            "deviation_kg": float,
            "deviation_pct": float,
            "offline": int,
            "indicator_set": str,
            "at": str,
            "body": str,
        },
        pk="id",
    )
    db["assessments"].create_index(["crossing_id"])
    db["hits"].create(
        {
            "assessment_id": str,
            "crossing_id": str,
            "indicator_id": str,
            "level": str,
            "channel": str,
            "at": str,
        }
    )
    db["hits"].create_index(["indicator_id"])
    db["commands"].create(
        {"id": str, "lane": str, "crossing_id": str, "kind": str, "body": str, "at": str}, pk="id"
    )
    db["commands"].create_index(["crossing_id"])
    db["control_acts"].create(
        {"id": str, "crossing_id": str, "lane": str, "result": str, "user": str, "at": str, "body": str},
        pk="id",
    )
    # seq is the per-site sequence number the centre uses to spot gaps; id drops duplicates.
    db.execute(
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            stream TEXT NOT NULL,
            klass TEXT NOT NULL,
            priority INTEGER NOT NULL,
            payload TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db["outbox"].create_index(["priority", "seq"])


# Forward migrations, applied in order; the schema version is the list's length.
# Append, never edit: a site's database may be at any earlier version.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1]

# Streams that are never evicted from the outbox: what a customs decision rests on, and
# the security reports (a rejected bundle, the audit log's anchors) the RAU must see.
CUSTOMS_STREAMS = frozenset({
    "crossing", "weighing", "plate", "hit", "control_act", "local_indicator", "rechannel",
    "bundle_rejected", "indicators_applied", "prescreen_hit", "rau_raise", "audit_anchor",
})
STREAM_PRIORITY = {"hit": 0, "prescreen_hit": 0, "control_act": 1, "rechannel": 1, "bundle_rejected": 1,
                   "crossing": 2, "weighing": 3, "plate": 3}


class Store:
    """The agent's database. Construct with `Store.open` (writer) or `Store.reader`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.path = path
        self.readonly = readonly

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {path}: {err}") from err
        store = cls(conn, path, readonly=False)
        store.migrate()
        return store

    @classmethod
    def reader(cls, path: str | Path) -> Store:
        """A read-only connection for another thread or process."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no database at {path}")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=10)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {path}: {err}") from err
        return cls(conn, path, readonly=True)

    def close(self) -> None:
        self.conn.close()
        if self.readonly:
            give_to_directory_owner(self.path)  # a command's reader must not leave root's -wal/-shm

    # ------------------------------------------------------------------ schema

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} is at schema {current}, newer than this agent "
                f"({len(MIGRATIONS)}): refusing to run an older agent on it"
            )
        for version, migration in enumerate(MIGRATIONS[current:], start=current + 1):
            with self.db.atomic():
                migration(self.db)
                self.conn.execute(f"PRAGMA user_version={version}")
            log.info("store_migrated version=%d path=%s", version, self.path)

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One atomic unit: an event and everything written because of it."""
        with self.db.atomic():
            yield self

    # ------------------------------------------------------------------ writes

    def record_event(self, event: Any) -> None:
        self.db["events"].insert(
            {
                "id": event.id,
                "kind": event.kind,
                "lane": getattr(event, "lane", ""),
                "at": _iso(event.at),
                "source": event.source,
                "body": event.model_dump_json(),
            }
        )

    def record_rejection(self, rejected: Rejected) -> None:
        self.db["rejections"].insert(
            {
                "id": new_id(),
                "source": rejected.source,
                "reason": rejected.reason,
                "raw": rejected.raw[:4000],
                "at": _iso(rejected.at),
            }
        )

    def upsert_prearrival(self, record: PreArrival, normalise: Callable[[str], str]) -> str:
        """Store a pre-arrival record; returns new, updated, duplicate or outdated."""
        row = self.db.execute(
            "SELECT version, status FROM prearrivals WHERE reference = ?", [record.reference]
        ).fetchone()
        if row is not None:
            version, status = row
            if record.version < version:
                return "outdated"
            if record.version == version:
                return "duplicate"
            if status != "pending":
                return "outdated"  # the truck has already arrived: the lane holds what it saw
        self.db["prearrivals"].upsert(
            {
                "reference": record.reference,
                "version": record.version,
                "tractor_plate": normalise(record.tractor_plate),
                "trailer_plate": normalise(record.trailer_plate) if record.trailer_plate else "",
                "status": "pending",
                "crossing_id": "",
                "received_at": _iso(datetime.now(UTC)),
                "expires_at": _iso(record.expires_at) if record.expires_at else "",
                "body": record.model_dump_json(),
            },
            pk="reference",
        )
        return "updated" if row is not None else "new"

    def mark_prearrival(self, reference: str, status: str, crossing_id: str = "") -> None:
        self.db.execute(
            "UPDATE prearrivals SET status = ?, crossing_id = ? WHERE reference = ?",
            [status, crossing_id, reference],
        )

    def expire_prearrivals(self, now: datetime) -> list[str]:
        refs = [
            r[0]
            for r in self.db.execute(
                "SELECT reference FROM prearrivals WHERE status = 'pending' AND expires_at != '' AND expires_at < ?",
                [_iso(now)],
            ).fetchall()
        ]
        for ref in refs:
            self.mark_prearrival(ref, "expired")
        return refs

    def save_crossing(self, row: dict[str, Any]) -> None:
        self.db["crossings"].upsert(row, pk="id")

    def record_assessment(self, assessment: Assessment) -> None:
        self.db["assessments"].insert(
            {
                "id": assessment.id,
                "crossing_id": assessment.crossing_id,
                "lane": assessment.lane,
                "reference": assessment.reference,
                "channel": assessment.channel,
                "random_selected": int(assessment.random_selected),
                "deviation_kg": assessment.deviation_kg,
                "deviation_pct": assessment.deviation_pct,
                "offline": int(assessment.offline),
                "indicator_set": assessment.indicator_set,
                "at": _iso(assessment.at),
                "body": assessment.model_dump_json(),
            }
        )
        self.db["hits"].insert_all(
            {
                "assessment_id": assessment.id,
                "crossing_id": assessment.crossing_id,
                "indicator_id": hit.indicator_id,
                "level": hit.level,
                "channel": hit.channel,
                "at": _iso(assessment.at),
            }
            for hit in assessment.hits
        )

    def record_command(self, command: Any, at: datetime) -> None:
        self.db["commands"].insert(
            {
                "id": new_id(),
                "lane": command.lane,
                "crossing_id": command.crossing_id,
                "kind": command.kind,
                "body": command.model_dump_json(),
                "at": _iso(at),
            }
        )

    def outbox_append(self, stream: str, payload: dict[str, Any], at: datetime) -> str:
        """Queue an event for the RAU in the caller's transaction; returns its id."""
        event_id = payload.get("id") or new_id()
        body = json.dumps({**payload, "id": event_id, "stream": stream}, default=str, separators=(",", ":"))
        self.db.execute(
            "INSERT OR IGNORE INTO outbox (id, stream, klass, priority, payload, bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                event_id,
                stream,
                "customs" if stream in CUSTOMS_STREAMS else "other",
                STREAM_PRIORITY.get(stream, 5),
                body,
                len(body),
                _iso(at),
            ],
        )
        return event_id

    def outbox_ack(self, ids: Iterable[str]) -> int:
        """Delete rows the central hub has confirmed storing; returns how many went."""
        ids = list(ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        cur = self.db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids)
        return cur.rowcount

    # ------------------------------------------------------------------ reads

    def prearrival(self, reference: str) -> PreArrival | None:
        row = self.db.execute("SELECT body FROM prearrivals WHERE reference = ?", [reference]).fetchone()
        return PreArrival.model_validate_json(row[0]) if row else None

    def pending_prearrivals(self) -> list[PreArrival]:
        rows = self.db.execute("SELECT body FROM prearrivals WHERE status = 'pending'").fetchall()
        return [PreArrival.model_validate_json(r[0]) for r in rows]

    def crossings(self, limit: int = 50, lane: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE lane = ?", [lane]) if lane else ("", [])
        return list(
            self.db.query(
                f"SELECT * FROM crossings {where} ORDER BY started_at DESC LIMIT ?", [*args, limit]
            )
        )

    def commands_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query("SELECT kind, body FROM commands WHERE crossing_id = ? ORDER BY id", [crossing_id])
        )

    def hits_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM hits WHERE crossing_id = ?", [crossing_id]))

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("events", "crossings", "assessments", "hits", "rejections", "outbox", "prearrivals"):
            out[table] = self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return out

    def channel_counts(self) -> dict[str, int]:
        return {
            row["channel"]: row["n"]
            for row in self.db.query("SELECT channel, count(*) AS n FROM assessments GROUP BY channel")
        }

    # ------------------------------------------------------------------ console: re-channel requests

    def save_rechannel(self, row: dict[str, Any]) -> None:
        """Insert or update one re-channel request (the console's two-approval workflow)."""
        self.db["rechannels"].upsert(row, pk="id")

    def rechannel(self, request_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM rechannels WHERE id = ?", [request_id]))
        return rows[0] if rows else None

    def rechannels(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        return list(self.db.query(f"SELECT * FROM rechannels {where} ORDER BY id DESC LIMIT ?", [*args, limit]))

    def set_crossing_channel(self, crossing_id: str, channel: str) -> None:
        self.db.execute("UPDATE crossings SET channel = ? WHERE id = ?", [channel, crossing_id])

    def control_acts_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM control_acts WHERE crossing_id = ? ORDER BY id", [crossing_id]))

    # ------------------------------------------------------------------ outbox budget (sync)

    def outbox_usage(self) -> dict[str, int]:
        """Bytes and rows per class, for the budget policy (edge_agent/sync/outbox.py)."""
        out = {"customs_bytes": 0, "other_bytes": 0, "customs_rows": 0, "other_rows": 0}
        for klass, rows, size in self.db.execute(
            "SELECT klass, count(*), coalesce(sum(bytes), 0) FROM outbox GROUP BY klass"
        ).fetchall():
            key = "customs" if klass == "customs" else "other"
            out[f"{key}_rows"] += rows
            out[f"{key}_bytes"] += size
        return out

    def outbox_oldest_other(self, limit: int = 10_000) -> list[tuple[str, int]]:
        """(id, bytes) of evictable rows, oldest first."""
        return [
            (r[0], r[1])
            for r in self.db.execute(
                "SELECT id, bytes FROM outbox WHERE klass != 'customs' ORDER BY seq LIMIT ?", [limit]
            ).fetchall()
        ]

    def outbox_evict(self, ids: Iterable[str]) -> int:
        """Drop undelivered rows the budget gave up on; never touches customs rows."""
        ids = list(ids)
        gone = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            gone += self.db.execute(
                f"DELETE FROM outbox WHERE klass != 'customs' AND id IN ({marks})", chunk
            ).rowcount
        if gone:
            log.warning("outbox_evicted rows=%d", gone)
        return gone


def _migration_2_rechannels(db: sqlite_utils.Database) -> None:
    # Re-channel requests wait for two approvals (head of office, local risk analyst),
    # possibly across a restart, so they live in the database and not in lane memory.
    db["rechannels"].create(
        {
            "id": str,
            "crossing_id": str,
            "lane": str,
            "from_channel": str,
            "to_channel": str,
            "requested_by": str,
            "reason": str,
            "requested_at": str,
            "head_by": str,
            "head_at": str,
            "analyst_by": str,
            "analyst_at": str,
            "status": str,  # pending | applied | refused | not_applied
            "outcome": str,  # why it was refused or not applied
            "decided_at": str,
        },
        pk="id",
    )
    db["rechannels"].create_index(["status"])


MIGRATIONS.append(_migration_2_rechannels)


def _migration_3_rau_raises(db: sqlite_utils.Database) -> None:
    # A channel the RAU raised for a declaration or a plate outlives a restart: the truck
    # it names may arrive days later.
    db["rau_raises"].create(
        {"key": str, "channel": str, "reason": str, "command_id": str, "at": str},
        pk="key",
    )


MIGRATIONS.append(_migration_3_rau_raises)
