"""The store: durable mode, migrations, pre-arrival versions, outbox rows, readers."""

import sqlite3
from datetime import UTC, datetime

import pytest

from edge_agent.errors import StoreError
from edge_agent.models import Party, PreArrival, VehicleDetected
from edge_agent.store import MIGRATIONS, Store


def record(version=1, reference="REF-1"):
    return PreArrival(
        reference=reference, version=version, tractor_plate="ks 01-123 ab", gross_kg=20000,
        consignor=Party(name="A"), consignee=Party(name="B"),
    )


def test_opens_in_wal_with_full_sync_and_current_schema(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version == len(MIGRATIONS)


def test_migrations_run_forward_only_once(tmp_path):
    Store.open(tmp_path / "agent.db").close()
    store = Store.open(tmp_path / "agent.db")
    assert store.schema_version == len(MIGRATIONS)


def test_a_database_from_a_newer_agent_is_refused(tmp_path):
    path = tmp_path / "agent.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this agent"):
        Store.open(path)


def test_prearrival_versions_replace_older_and_ignore_duplicates(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    assert store.upsert_prearrival(record(1)) == "new"
    assert store.upsert_prearrival(record(1)) == "duplicate"
    assert store.upsert_prearrival(record(2)) == "updated"
    assert store.upsert_prearrival(record(1)) == "outdated"
    assert store.prearrival("REF-1").version == 2
    row = store.db.execute("SELECT tractor_plate FROM prearrivals").fetchone()
    assert row[0] == "KS01123AB"
    store.mark_prearrival("REF-1", "arrived", "C1")
    assert store.upsert_prearrival(record(3)) == "outdated"
    assert store.pending_prearrivals() == []


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    event = VehicleDetected(lane="L1")
    with pytest.raises(RuntimeError), store.transaction():
        store.record_event(event)
        store.outbox_append("crossing", {"x": 1}, event.at)
        raise RuntimeError("power cut")
    assert store.counts()["events"] == 0 and store.counts()["outbox"] == 0


def test_outbox_rows_get_sequence_and_priority_and_are_deleted_on_ack(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    event = VehicleDetected(lane="L1")
    with store.transaction():
        a = store.outbox_append("crossing", {"n": 1}, event.at)
        b = store.outbox_append("hit", {"n": 2}, event.at)
    rows = list(store.db.query("SELECT seq, id, priority, klass FROM outbox ORDER BY seq"))
    assert [r["id"] for r in rows] == [a, b]
    assert rows[0]["seq"] < rows[1]["seq"]
    assert rows[1]["priority"] < rows[0]["priority"]
    assert {r["klass"] for r in rows} == {"customs"}
    assert store.outbox_ack([a, "unknown"]) == 1
    assert [r["id"] for r in store.db.query("SELECT id FROM outbox")] == [b]


def test_a_reader_sees_commits_and_cannot_write(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    reader = Store.reader(tmp_path / "agent.db")
    with store.transaction():
        store.record_event(VehicleDetected(lane="L1"))
    assert reader.counts()["events"] == 1
    with pytest.raises(sqlite3.OperationalError):
        reader.conn.execute("DELETE FROM events")


def test_outbox_totals_follow_every_append_ack_and_eviction(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    now = datetime.now(UTC)

    def scanned() -> dict[str, int]:
        out = {"customs_bytes": 0, "other_bytes": 0, "customs_rows": 0, "other_rows": 0}
        for klass, rows, size in store.conn.execute(
                "SELECT klass, count(*), coalesce(sum(bytes), 0) FROM outbox GROUP BY klass"):
            out[f"{klass}_rows"], out[f"{klass}_bytes"] = rows, size
        return out

    with store.transaction():
        ids = [store.outbox_append("hit" if n % 3 else "health", {"n": n, "pad": "x" * n}, now) for n in range(60)]
        store.outbox_append("hit", {"id": ids[1], "n": 1}, now)  # a duplicate id is ignored, and not counted
    assert store.outbox_usage() == scanned() and store.outbox_count() == 60
    with store.transaction():
        store.outbox_ack(ids[:10])
        store.outbox_evict(ids[10:40])  # only the non-customs ones go
    assert store.outbox_usage() == scanned() and store.outbox_count() == sum(1 for _ in store.outbox_after(0, limit=99))
    try:
        with store.transaction():
            store.outbox_ack(ids[40:])
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert store.outbox_usage() == scanned()
    assert store.outbox_oldest_at() == store.conn.execute("SELECT min(created_at) FROM outbox").fetchone()[0]
    store.close()


def test_the_totals_migration_counts_what_was_already_queued(tmp_path):
    import sqlite3

    import sqlite_utils

    from edge_agent.store import MIGRATIONS

    path = tmp_path / "agent.db"
    conn = sqlite3.connect(path)
    db = sqlite_utils.Database(conn)
    for version, migration in enumerate(MIGRATIONS[:6], start=1):  # an agent of schema 6, with a backlog
        migration(db)
        conn.execute(f"PRAGMA user_version={version}")
    conn.executemany("INSERT INTO outbox (id, stream, klass, priority, payload, bytes, created_at)"
                     " VALUES (?, 'hit', 'customs', 0, '{}', ?, '2026-01-01T00:00:00.000+00:00')",
                     [(f"id-{n}", 100 + n) for n in range(25)])
    conn.commit()
    conn.close()
    store = Store.open(path)
    assert store.outbox_usage() == {"customs_bytes": sum(100 + n for n in range(25)), "other_bytes": 0,
                                    "customs_rows": 25, "other_rows": 0}
    store.close()
