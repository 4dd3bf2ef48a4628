"""The evidence chain's head goes to the RAU with every manifest, and `evidence verify
--central-db` checks the chain against the newest head the hub holds: removing the newest
manifests on the board, which the chain alone cannot tell, is found."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory
from testkit import console_rig as rig

from edge_agent.central.ledger import Ledger
from edge_agent.evidence.cli import evidence
from edge_agent.evidence.manifest import manifest_paths


def _heads_queued(data_dir: Path) -> list[dict]:
    conn = sqlite3.connect(data_dir / "agent.db")
    try:
        rows = conn.execute("SELECT payload FROM outbox WHERE stream = 'evidence_head' ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def test_each_manifest_sends_its_head_and_verify_checks_against_the_hubs(tmp_path):
    agent = rig.LaneBench(rig.site_config(tmp_path), pin_factory=MockFactory(), data_dir=tmp_path).start()
    try:
        store = agent.evidence.recorder.store
        for crossing in ("C1", "C2", "C3"):
            store.add_bytes(crossing, "scale", "frames.hex", crossing.encode() * 20)
            store.seal(crossing)
        heads = rig.wait_for(lambda: len(h := _heads_queued(tmp_path)) == 3 and h, "three heads queued")
    finally:
        agent.stop()
    assert [h["sequence"] for h in heads] == [1, 2, 3] and heads[-1]["sha256"] == store.head.sha256
    central_db = tmp_path / "rau" / "central.db"
    ledger = Ledger(central_db)
    assert ledger.ingest([("xk-test", "evidence_head", json.dumps(h).encode()) for h in heads]).stored == 3
    ledger.close()
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "xk-test"\nregion = "xk-rs"\ndata_dir = "{tmp_path}"\n[[lanes]]\nid = "L1"\n')

    intact = CliRunner().invoke(evidence, ["verify", "--config", str(site), "--central-db", str(central_db)])
    assert intact.exit_code == 0, intact.output
    assert "reaches the anchored manifest" in intact.output and "LOCAL-ONLY" not in intact.output

    newest = manifest_paths(tmp_path / "evidence")[-1]
    newest.unlink()  # and its crossing's files, so nothing is left unsealed
    for path in sorted((tmp_path / "evidence" / "crossings" / "C3").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    local = CliRunner().invoke(evidence, ["verify", "--config", str(site), "--local-only"])
    assert local.exit_code == 0, "the chain alone cannot tell its newest link is gone"
    cut = CliRunner().invoke(evidence, ["verify", "--config", str(site), "--central-db", str(central_db)])
    assert cut.exit_code == 1 and "not in the chain" in cut.output, cut.output

    nothing = CliRunner().invoke(evidence, ["verify", "--config", str(site), "--central-db", str(central_db),
                                            "--site", "xk-other"])
    assert nothing.exit_code == 3 and "holds no evidence head of xk-other" in nothing.output
