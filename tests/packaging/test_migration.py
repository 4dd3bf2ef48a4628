"""An upgrade meets a database the previous version wrote: the current Store migrates it
to a schema no different from a new database's, and keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.store import MIGRATIONS, Store


def layout(path: Path) -> dict[str, object]:
    """Every table's columns (name, type, not null, default, key) and every index's columns."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, object] = {}
        for table in tables:
            out[table] = [row[1:] for row in conn.execute(f"PRAGMA table_info({table})")]
            for index in conn.execute(f"PRAGMA index_list({table})").fetchall():
                out[f"{table}:{index[1]}"] = [r[2] for r in conn.execute(f"PRAGMA index_info({index[1]})")]
        return out
    finally:
        conn.close()


def test_the_store_migrates_a_database_of_the_previous_schema(tmp_path, previous_schema_database):
    old = previous_schema_database(tmp_path / "old" / "agent.db")
    store = Store.open(old)
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    Store.open(tmp_path / "new" / "agent.db").close()
    assert layout(old) == layout(tmp_path / "new" / "agent.db")
    conn = sqlite3.connect(old)
    try:
        assert conn.execute("SELECT id, source FROM events").fetchall() == [("01PREVIOUS", "previous version")]
    finally:
        conn.close()
