"""The audit log's newest hash is anchored in the customs database and queued for the
RAU, so `audit verify --config` sees a log cut short or rewritten with fresh hashes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import console_rig as rig

from edge_agent.console.cli import audit
from edge_agent.web.audit import GENESIS, Anchor, entry_hash, verify_rows


def chain(n: int) -> list[tuple]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = (seq, f"2026-11-30T08:00:0{seq}", "olga", "officer", "release", "done", f"r{seq}", "{}")
        digest = entry_hash(prev, *fields)
        rows.append((*fields, prev, digest))
        prev = digest
    return rows


def test_a_chain_cut_before_its_anchor_or_rewritten_under_it_fails():
    rows = chain(5)
    at_4 = Anchor(4, rows[3][-1], "2026-11-30T08:01:00")
    assert verify_rows(rows, at_4).ok
    assert verify_rows(rows[:4], at_4).ok
    cut = verify_rows(rows[:3], at_4)
    assert not cut.ok and "cut short" in cut.problem and "entries 4 to 4" in cut.problem
    forged = verify_rows(chain(5)[:2] + _rehashed(rows[2:]), at_4)  # a consistent chain, other content
    assert not forged.ok and forged.bad_seq == 4 and "rewritten" in forged.problem
    assert verify_rows(rows[:3]).ok, "without an anchor a cut log still links up: the reason for anchors"


def _rehashed(tail: list[tuple]) -> list[tuple]:
    prev, out = tail[0][-2], []
    for row in tail:
        fields = (*row[:6], row[6] + " (edited)", row[7])
        digest = entry_hash(prev, *fields)
        out.append((*fields, prev, digest))
        prev = digest
    return out


@pytest.fixture
def anchored_site(tmp_path):
    from gpiozero.pins.mock import MockFactory

    from edge_agent.config import ConsoleConfig
    from edge_agent.console.app import create_app

    config = rig.site_config(tmp_path, ConsoleConfig(enabled=False, audit_anchor_interval_s=0.2))
    bench = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path)
    bench.start()
    app = create_app(bench, config.console)
    try:
        yield bench, app.state.console
    finally:
        app.state.console.close()
        bench.stop()


def _anchors_queued(agent) -> list[dict]:
    conn = sqlite3.connect(agent.data_dir / "agent.db")
    try:
        rows = conn.execute("SELECT payload FROM outbox WHERE stream = 'audit_anchor' ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def _site_toml(data_dir: Path) -> Path:
    path = data_dir / "site.toml"
    path.write_text(f'[site]\nid = "xk-test"\nregion = "xk-rs"\ndata_dir = "{data_dir}"\n[[lanes]]\nid = "L1"\n')
    return path


def test_the_console_anchors_its_log_and_verify_catches_a_cut_tail(anchored_site):
    agent, console = anchored_site
    for n in range(3):
        console.audit.append("olga", "officer", "release", "done", f"reason {n}")
    head = console.audit.head()
    anchors = rig.wait_for(lambda: _anchors_queued(agent), "an anchor in the outbox")
    assert anchors[-1]["seq"] == head.seq and anchors[-1]["hash"] == head.hash
    assert anchors[-1]["site"] == "xk-test"
    site = _site_toml(agent.data_dir)
    time.sleep(1.0)  # five anchoring rounds with nothing new to anchor
    assert len(_anchors_queued(agent)) == 1, "an anchor only when the log has grown"

    intact = CliRunner().invoke(audit, ["verify", "--config", str(site), "--local-only"])
    assert intact.exit_code == 0, intact.output
    assert f"reaches entry {head.seq}" in intact.output

    conn = sqlite3.connect(console.audit.path)
    conn.execute("DELETE FROM audit WHERE seq = ?", [head.seq])
    conn.commit()
    conn.close()
    assert CliRunner().invoke(audit, ["verify", "--db", str(console.audit.path), "--local-only"]).exit_code == 0, \
        "the chain alone cannot tell"
    cut = CliRunner().invoke(audit, ["verify", "--config", str(site)])
    assert cut.exit_code == 1 and "cut short" in cut.output


def test_the_hubs_copy_of_the_anchors_still_catches_a_cut_when_the_sites_own_are_gone(anchored_site, tmp_path):
    from edge_agent.central.ledger import Ledger

    agent, console = anchored_site
    for n in range(4):
        console.audit.append("hana", "head_of_office", "rechannel_decide", "done", f"reason {n}")
    rig.wait_for(lambda: _anchors_queued(agent), "an anchor in the outbox")
    # What the hub stores when the outbox row arrives (its MQTT path is tested in tests/sync).
    conn = sqlite3.connect(agent.data_dir / "agent.db")
    rows = conn.execute("SELECT payload FROM outbox WHERE stream = 'audit_anchor'").fetchall()
    conn.close()
    central_db = tmp_path / "rau" / "central.db"
    ledger = Ledger(central_db)
    assert ledger.ingest([("xk-test", "audit_anchor", row[0].encode()) for row in rows]).stored == len(rows)
    ledger.close()
    site = _site_toml(agent.data_dir)
    intact = CliRunner().invoke(audit, ["verify", "--config", str(site), "--central-db", str(central_db)])
    assert intact.exit_code == 0 and "anchored at" in intact.output and "LOCAL-ONLY" not in intact.output, \
        intact.output

    # Cut the log's tail, and the site's own anchors with it.
    conn = sqlite3.connect(console.audit.path)
    conn.execute("DELETE FROM audit WHERE seq > 2")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(agent.data_dir / "agent.db")
    conn.execute("DELETE FROM events WHERE kind = 'audit_anchored'")
    conn.commit()
    conn.close()

    # Issue 14 item 9: the site's own check passes such a forgery, so it says so and fails.
    local = CliRunner().invoke(audit, ["verify", "--config", str(site)])
    assert local.exit_code == 3 and "no anchor in the customs database yet" in local.stdout
    assert "LOCAL-ONLY: not checked against the anchors at the RAU" in local.stderr
    accepted = CliRunner().invoke(audit, ["verify", "--config", str(site), "--local-only"])
    assert accepted.exit_code == 0 and "LOCAL-ONLY" in accepted.output
    at_hub = CliRunner().invoke(audit, ["verify", "--db", str(console.audit.path), "--central-db", str(central_db),
                                        "--site", "xk-test"])
    assert at_hub.exit_code == 1 and "cut short" in at_hub.output and "entries 3 to 4" in at_hub.output
    other_site = CliRunner().invoke(audit, ["verify", "--db", str(console.audit.path), "--central-db",
                                            str(central_db), "--site", "xk-none"])
    assert other_site.exit_code == 3 and "no anchor in the hub's" in other_site.output, "no anchor at the hub: local"
    no_site = CliRunner().invoke(audit, ["verify", "--db", str(console.audit.path), "--central-db", str(central_db)])
    assert no_site.exit_code == 2 and "--site" in no_site.output
