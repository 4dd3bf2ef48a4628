"""Backup and restore as docs/central.md says: SQLite's online backup (`central backup`)
and pg_dump / pg_restore of a PostgreSQL ledger; the events are there afterwards and a
resend is still a duplicate."""

from __future__ import annotations

import json
import subprocess

from click.testing import CliRunner

from edge_agent.central.cli import central
from edge_agent.central.ledger import Ledger
from edge_agent.ids import new_id


def events(n: int) -> list[tuple[str, str, bytes]]:
    return [("bcp-a", "crossing", json.dumps({"id": new_id(), "stream": "crossing", "site": "bcp-a",
                                              "tractor_plate": f"SK{i:03d}AB"}).encode()) for i in range(n)]


def test_the_sqlite_ledger_is_backed_up_while_open_and_the_copy_holds_every_event(tmp_path):
    live = Ledger(tmp_path / "central.db")
    batch = events(50)
    live.ingest(batch)
    result = CliRunner().invoke(central, ["backup", "--db", str(tmp_path / "central.db"),
                                          "--out", str(tmp_path / "copy.db")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"50 events backed up to {tmp_path / 'copy.db'}"
    live.ingest(events(1))  # the hub kept writing; the copy is the state at the backup
    live.close()
    copy = Ledger(tmp_path / "copy.db")
    assert copy.count() == 50 and copy.events_by(plate="SK007AB")
    assert copy.ingest(batch[:1]).duplicates == 1
    copy.close()
    again = CliRunner().invoke(central, ["backup", "--db", str(tmp_path / "central.db"),
                                         "--out", str(tmp_path / "copy.db")])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output


def test_the_postgresql_ledger_survives_pg_dump_and_pg_restore(pg_cluster, pg_url, tmp_path):
    ledger = Ledger(pg_url)
    batch = events(50)
    ledger.ingest(batch)
    ledger.close()
    dump = tmp_path / "ledger.dump"
    subprocess.run([str(pg_cluster.bin_dir / "pg_dump"), "-Fc", "-f", str(dump), "-d", pg_url],
                   check=True, capture_output=True, timeout=120)
    restored_url = pg_cluster.create_database("restored", template="template0")
    subprocess.run([str(pg_cluster.bin_dir / "pg_restore"), "--no-owner", "-d", restored_url, str(dump)],
                   check=True, capture_output=True, timeout=120)
    restored = Ledger(restored_url)
    assert restored.count() == 50 and restored.duplicates_stored() == 0
    assert [p["tractor_plate"] for _, _, p in restored.events_by(plate="SK007AB")] == ["SK007AB"]
    assert restored.ingest(batch).duplicates == 50  # a site resending after the restore stores nothing twice
    assert restored.ingest(events(1)).stored == 1  # and new events still find their partitions
    restored.close()
    result = CliRunner().invoke(central, ["backup", "--db", pg_url, "--out", str(tmp_path / "x.db")])
    assert result.exit_code == 1 and "pg_dump" in result.output
