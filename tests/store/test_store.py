"""The store: durable mode, migrations, pre-arrival versions, outbox rows, readers."""

import sqlite3

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
