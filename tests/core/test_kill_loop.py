"""kill -9 under load, twenty times: the database stays sound after every kill, every
crossing ends (interrupted, if a kill cut it), and the hub stores every event once."""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from testkit.processes import serve_central
from testkit.waiting import wait_for

AGENT = str(Path(__file__).with_name("agent_under_load.py"))
KILLS = 20


@pytest.fixture
def hub(broker, tmp_path):
    """The real `edge-agent central serve`; yields its database."""
    db = tmp_path / "central.db"
    proc = serve_central(broker.port, db, tmp_path)
    yield db
    proc.terminate()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def rows(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_kill9_under_load_ends_every_crossing_and_the_hub_stores_each_event_once(broker, hub, processes, tmp_path):
    data = tmp_path / "site"
    data.mkdir()
    db = data / "agent.db"
    chance = random.Random(20)
    ended_before = 0
    for run in range(KILLS):
        log = tmp_path / f"run{run}.log"
        agent = processes([sys.executable, AGENT, "--data-dir", str(data), "--port", str(broker.port),
                           "--run", str(run)], log)
        # At least one truck through in this life, then a kill at a random moment of the next.
        wait_for(lambda log=log, agent=agent: "ended " in log.read_text() or not agent.alive(), 60,
                 what=f"a truck through the lanes in run {run}")
        assert agent.alive(), agent.output()
        time.sleep(chance.uniform(0, 0.25))
        agent.kill9()
        assert integrity(db) == "ok", f"after kill {run + 1}"
        ended_before += log.read_text().count("ended ")

    final = processes([sys.executable, AGENT, "--data-dir", str(data), "--port", str(broker.port), "--trucks", "0"],
                      tmp_path / "final.log")
    wait_for(lambda: not final.alive(), 120, what="the last start to end what was cut and drain")
    assert "drained" in (tmp_path / "final.log").read_text(), final.output()

    crossings = rows(db, "SELECT id, outcome, ended_at FROM crossings")
    assert len(crossings) >= ended_before >= KILLS
    assert [c for c in crossings if not c[2]] == [], "a crossing was never ended"
    interrupted = [c for c in crossings if c[1] == "interrupted"]
    assert interrupted, "no kill cut a crossing: the loop did not test recovery"

    ends = rows(hub, "SELECT payload FROM events WHERE stream = 'crossing'")
    ended_at_hub = [json.loads(p)["crossing"] for (p,) in ends]
    assert sorted(ended_at_hub) == sorted(c[0] for c in crossings), "the RAU must see one end per crossing"
    hits_at_hub = sorted((json.loads(p)["assessment"], json.loads(p)["indicator_id"])
                         for (p,) in rows(hub, "SELECT payload FROM events WHERE stream = 'hit'"))
    assert hits_at_hub == sorted(rows(db, "SELECT assessment_id, indicator_id FROM hits"))
    acts_at_hub = rows(hub, "SELECT count(*) FROM events WHERE stream = 'control_act'")[0][0]
    assert acts_at_hub == rows(db, "SELECT count(*) FROM control_acts")[0][0]
