"""Migration 8 and the holds: manual holds and releases, automatic holds derived from
hits, control acts and re-channels."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import sqlite_utils

from edge_agent.models import Assessment, Hit
from edge_agent.store import MIGRATIONS, Store, iso

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def _crossing(store: Store, cid: str, *, hit: bool = False) -> None:
    with store.transaction():
        store.save_crossing({"id": cid, "lane": "L1", "started_at": iso(NOW), "ended_at": iso(NOW), "phase": "idle"})
        store.record_assessment(Assessment(crossing_id=cid, lane="L1", channel="red" if hit else "green",
                                           hits=[Hit(indicator_id="I1", channel="red")] if hit else []))


def test_migration_8_applies_on_a_database_of_schema_7_and_keeps_its_crossings(tmp_path):
    path = tmp_path / "agent.db"
    conn = sqlite3.connect(path)
    db = sqlite_utils.Database(conn)
    for version, migration in enumerate(MIGRATIONS[:7], start=1):
        migration(db)
        conn.execute(f"PRAGMA user_version={version}")
    conn.execute("INSERT INTO crossings (id, lane, started_at, ended_at) VALUES ('OLD', 'L1', '', '')")
    conn.execute("INSERT INTO hits (assessment_id, crossing_id, indicator_id, level, channel, at)"
                 " VALUES ('A', 'OLD', 'I1', 'central', 'red', '')")
    conn.commit()
    conn.close()
    store = Store.open(path)
    assert store.schema_version == len(MIGRATIONS) == 8
    assert store.held_count() == 1  # flagged before the migration: held without a row
    assert store.hold_of("OLD") is None
    store.close()


def test_holds_automatic_manual_and_released(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    _crossing(store, "HIT", hit=True)
    _crossing(store, "PLAIN")
    assert store.flagged_reasons("HIT") == ["hit"] and store.flagged_reasons("PLAIN") == []
    assert store.held_count() == 1
    with store.transaction():
        store.place_hold("PLAIN", "head", "case 17", NOW)
    assert store.held_count() == 2
    assert store.hold_of("PLAIN")["placed_by"] == "head"
    with store.transaction():
        store.release_hold("HIT", "head", "no case", NOW)
        store.release_hold("PLAIN", "head", "case closed", NOW)
    assert store.held_count() == 0
    released = store.hold_of("PLAIN")
    assert (released["state"], released["placed_reason"], released["released_reason"]) == \
        ("released", "case 17", "case closed")
    with store.transaction():
        store.place_hold("HIT", "rau", "reopened", NOW)
    assert store.held_count() == 1 and store.hold_of("HIT")["released_at"] == ""
    states = {r["id"]: r for r in store.retention_states(["HIT", "PLAIN", "NONE"])}
    assert set(states) == {"HIT", "PLAIN"}
    assert (states["HIT"]["flagged"], states["HIT"]["hold"]) == (1, "held")
    assert (states["PLAIN"]["flagged"], states["PLAIN"]["hold"]) == (0, "released")
    store.close()
