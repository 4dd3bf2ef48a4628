"""The write-ahead log is copied back by its own thread, not inside the core's commits."""

from __future__ import annotations

from datetime import UTC, datetime

from testkit.waiting import wait_for

from edge_agent.store import Store
from edge_agent.store.checkpoint import BACKSTOP_PAGES, SQLITE_DEFAULT_PAGES, Checkpointer


def test_the_checkpointer_copies_the_log_while_the_writer_only_appends(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    checkpointer = Checkpointer(tmp_path / "agent.db", interval_s=0.05).start(store.conn)
    try:
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        for n in range(400):  # ~1,600 pages of log: past SQLite's own threshold of 1,000
            with store.transaction():
                store.outbox_append("crossing", {"n": n, "pad": "x" * 3000}, datetime.now(UTC))
        # Only a checkpoint writes the database file; the writer's own threshold is far off.
        db = tmp_path / "agent.db"
        wait_for(lambda: db.stat().st_size >= 1000 * 1024, 20, what="the log copied by the checkpoint thread")
        assert checkpointer.checkpoints > 0
    finally:
        checkpointer.stop()
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SQLITE_DEFAULT_PAGES
    assert store.outbox_count() == 400
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
