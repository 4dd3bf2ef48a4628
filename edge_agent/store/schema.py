"""The agent database's schema as forward migrations.

Append, never edit: a site's database may be at any earlier version, and the schema
version (`PRAGMA user_version`) is the number of migrations applied. A new table or
column is a new function at the end of `MIGRATIONS` (CONTRIBUTING.md, "A database
migration").
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _migration_1(db: sqlite_utils.Database) -> None:
    db.table("events").create(
        {"id": str, "kind": str, "lane": str, "at": str, "source": str, "body": str}, pk="id"
    )
    db.table("events").create_index(["lane", "at"])
    db.table("rejections").create(
        {"id": str, "source": str, "reason": str, "raw": str, "at": str}, pk="id"
    )
    db.table("prearrivals").create(
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
    db.table("prearrivals").create_index(["status"])
    db.table("crossings").create(
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
    db.table("crossings").create_index(["lane", "started_at"])
    db.table("assessments").create(
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
    db.table("assessments").create_index(["crossing_id"])
    db.table("hits").create(
        {
            "assessment_id": str,
            "crossing_id": str,
            "indicator_id": str,
            "level": str,
            "channel": str,
            "at": str,
        }
    )
    db.table("hits").create_index(["indicator_id"])
    db.table("commands").create(
        {"id": str, "lane": str, "crossing_id": str, "kind": str, "body": str, "at": str}, pk="id"
    )
    db.table("commands").create_index(["crossing_id"])
    db.table("control_acts").create(
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
    db.table("outbox").create_index(["priority", "seq"])


def _migration_2_rechannels(db: sqlite_utils.Database) -> None:
    # Re-channel requests wait for two approvals (head of office, local risk analyst),
    # possibly across a restart, so they live in the database and not in lane memory.
    db.table("rechannels").create(
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
    db.table("rechannels").create_index(["status"])



def _migration_3_rau_raises(db: sqlite_utils.Database) -> None:
    # A channel the RAU raised for a declaration or a plate outlives a restart: the truck
    # it names may arrive days later.
    db.table("rau_raises").create(
        {"key": str, "channel": str, "reason": str, "command_id": str, "at": str},
        pk="key",
    )


def _migration_4_rau_raise_expiry(db: sqlite_utils.Database) -> None:
    # A raise ends with its crossing or at the expiry the RAU gave it ("" = none given).
    db.execute("ALTER TABLE rau_raises ADD COLUMN expires_at TEXT NOT NULL DEFAULT ''")


def _migration_5_reported(db: sqlite_utils.Database) -> None:
    # What has been queued for the RAU of things that change outside the core's events
    # (local indicators written by a command, imported sets), by digest.
    db.table("reported").create({"key": str, "digest": str, "at": str}, pk="key")


def _migration_6_rules_in_force(db: sqlite_utils.Database) -> None:
    # Which indicator set was in force when: its sources (kept in <data_dir>/rules-archive/)
    # and the time range, so a stored crossing can be assessed again with the set of its time.
    db.execute("""CREATE TABLE rules_in_force (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        digest TEXT NOT NULL,
        sources TEXT NOT NULL,
        from_at TEXT NOT NULL,
        to_at TEXT NOT NULL DEFAULT ''
    )""")
    db.table("rules_in_force").create_index(["from_at"])


def _migration_7_outbox_totals(db: sqlite_utils.Database) -> None:
    # Rows and bytes per class kept as the outbox changes, so the budget check and the
    # backlog figure cost the same with ten rows or a million (a scan stalled the core
    # loop for a second during a long outage's drain). Triggers keep them in the very
    # transaction that inserts or deletes.
    db.execute("""CREATE TABLE outbox_totals (
        klass TEXT PRIMARY KEY,
        rows INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0
    )""")
    db.execute("""INSERT INTO outbox_totals (klass, rows, bytes)
        SELECT klass, count(*), coalesce(sum(bytes), 0) FROM outbox GROUP BY klass""")
    db.execute("""CREATE TRIGGER outbox_totals_insert AFTER INSERT ON outbox BEGIN
        INSERT INTO outbox_totals (klass, rows, bytes) VALUES (new.klass, 1, new.bytes)
        ON CONFLICT(klass) DO UPDATE SET rows = rows + 1, bytes = bytes + new.bytes;
    END""")
    db.execute("""CREATE TRIGGER outbox_totals_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_totals SET rows = rows - 1, bytes = bytes - old.bytes WHERE klass = old.klass;
    END""")
    # The crossings a crash left open are looked up at every start.
    db.execute("CREATE INDEX crossings_open ON crossings (ended_at) WHERE ended_at = ''")


def _migration_8_holds(db: sqlite_utils.Database) -> None:
    # A hold keeps every file and row of a crossing until it is released. Crossings with
    # hits, control acts or re-channels are held without a row (derived by query); a row
    # is a manual hold, or the release of either kind (store/retention.py).
    db.execute("""CREATE TABLE holds (
        crossing_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        placed_at TEXT NOT NULL DEFAULT '',
        placed_by TEXT NOT NULL DEFAULT '',
        placed_reason TEXT NOT NULL DEFAULT '',
        released_at TEXT NOT NULL DEFAULT '',
        released_by TEXT NOT NULL DEFAULT '',
        released_reason TEXT NOT NULL DEFAULT ''
    )""")
    # Whether a crossing is flagged is asked per crossing by retention: by crossing, not
    # by scanning. hits and control acts are a few per flagged truck; nothing per plain one.
    db.execute("CREATE INDEX hits_crossing ON hits (crossing_id)")
    db.execute("CREATE INDEX control_acts_crossing ON control_acts (crossing_id)")
    db.execute("CREATE INDEX rechannels_crossing ON rechannels (crossing_id)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1,
    _migration_2_rechannels,
    _migration_3_rau_raises,
    _migration_4_rau_raise_expiry,
    _migration_5_reported,
    _migration_6_rules_in_force,
    _migration_7_outbox_totals,
    _migration_8_holds,
]
