"""Several `edge-agent central serve` workers on one PostgreSQL ledger: a worker killed
with kill -9 under load loses nothing (the sites resend what it never acknowledged, and
the survivor stores it once), SEED records are published once, by the lease holder,
which the survivor becomes; and one SQLite file refuses a second worker.

The sites are the agent's own outbox and sync client, driven by the fleet benchmark's
`Fleet` (benchmarks/fleet.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from testkit.processes import REPO
from testkit.waiting import wait_for

from benchmarks.fleet import Fleet, Workers, crossing_payload
from edge_agent.central.broker import Endpoint, publish_once
from edge_agent.central.ledger import Ledger
from edge_agent.central.mosquitto import PrivateBroker
from edge_agent.sync import topics


def seed(reference: str) -> bytes:
    return json.dumps({"reference": reference, "tractor_plate": "SK1AB", "gross_kg": 1000, "consignor": {"name": "a"},
                       "consignee": {"name": "b"}, "office_of_entry": "bcp-000"}).encode()


def test_a_worker_killed_under_load_loses_nothing_and_nothing_is_stored_twice(pg_url, tmp_path):
    import random

    broker = PrivateBroker(tmp_path / "broker", max_queued_messages=100_000).start()
    workers = Workers(broker.port, pg_url, tmp_path)
    fleet = Fleet(tmp_path, broker.port, 4, resend_timeout_s=2.0, poll_interval_s=0.05, drain_rate_per_s=0)
    received: list[str] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bcp-000-listener")
    subscribed = threading.Event()
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.on_message = lambda c, u, m: received.append(json.loads(m.payload)["reference"])
    ledger = Ledger(pg_url)
    rng = random.Random(1)
    try:
        listener.connect("127.0.0.1", broker.port)
        listener.subscribe(topics.down("bcp-000", "prearrival"), 1)
        listener.loop_start()
        assert subscribed.wait(15)
        workers.start(2)
        fleet.connect_all()
        publish_once(Endpoint(port=broker.port), "seed-1", [(topics.SEED_INBOX, seed("SEED-A"), False)])
        wait_for(lambda: "SEED-A" in received, 20, what="the first record routed")

        def load(start: int, rounds: int) -> None:
            for n in range(start, start + rounds):
                for site in fleet.sites:
                    fleet.append(site, [("crossing", crossing_payload(site, n * 20 + k, rng)) for k in range(20)])

        load(0, 15)
        wait_for(lambda: ledger.count() >= 400, 30, what="both workers storing")
        workers.kill9(0)  # mid-stream: it held messages it never acknowledged
        load(15, 15)
        publish_once(Endpoint(port=broker.port), "seed-2", [(topics.SEED_INBOX, seed("SEED-B"), False)])
        assert fleet.wait_drained(90), f"{fleet.unacknowledged()} events never acknowledged"
        wait_for(lambda: "SEED-B" in received and not ledger.routed_pending(), 30,
                 what="the survivor to take the duties over and route the second record")
        assert fleet.appended == 4 * 30 * 20
        assert ledger.count() == fleet.appended and ledger.duplicates_stored() == 0
        assert all(store.outbox_count() == 0 for store in fleet.stores.values())
        assert received.count("SEED-A") == 1 and received.count("SEED-B") == 1
    finally:
        listener.loop_stop()
        listener.disconnect()
        fleet.close()
        workers.stop()
        broker.stop()
        ledger.close()


def test_a_second_worker_on_one_sqlite_ledger_is_refused_with_a_clear_error(tmp_path, broker, served_hub):
    db, _ = served_hub
    second = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "central", "serve", "--port", str(broker.port), "--db", str(db),
         "--client-id", "rau-hub-second"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"already serves the SQLite ledger {Path(db)}" in second.stderr
    assert "run several workers on PostgreSQL" in second.stderr
