"""Several `edge-agent central serve` workers on one PostgreSQL ledger: a worker killed
with kill -9 under load loses nothing (the sites resend what it never acknowledged, and
the survivor stores it once), SEED records are published once, by the lease holder,
which the survivor becomes; bundles released into the ledger are published once, in
order; and one SQLite file refuses a second worker.

The sites are the agent's own outbox and sync client, driven by the fleet benchmark's
`Fleet` (benchmarks/fleet.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from click.testing import CliRunner
from testkit.processes import REPO
from testkit.waiting import wait_for

from benchmarks.fleet import Fleet, Workers, crossing_payload
from edge_agent.central.broker import Endpoint, publish_once
from edge_agent.central.cli import central
from edge_agent.central.hub import DUTIES_LEASE
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
        wait_for(lambda: ledger.count() >= 400, 60, what="both workers storing")
        holder = wait_for(lambda: ledger.lease_holder(DUTIES_LEASE), 60, what="a worker to hold the duties")
        workers.kill9(int(holder.rsplit("-", 1)[1]) - 1)  # the lease holder, mid-stream: it held messages
        # it never acknowledged, and the duties
        load(15, 15)
        publish_once(Endpoint(port=broker.port), "seed-2", [(topics.SEED_INBOX, seed("SEED-B"), False)])
        assert fleet.wait_drained(90), f"{fleet.unacknowledged()} events never acknowledged"
        wait_for(lambda: "SEED-B" in received and not ledger.routed_pending(), 60,
                 what="the survivor to take the duties over and route the second record")
        assert ledger.lease_holder(DUTIES_LEASE) not in (None, holder)
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


def ok(*args) -> str:
    result = CliRunner().invoke(central, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def retained(port: int, topic: str) -> bytes | None:
    """The retained message on `topic`, asked only where one is expected (the wait is long)."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="retained-reader")
    client.on_message = lambda c, u, m: (got.append(bytes(m.payload)), done.set())
    client.connect("127.0.0.1", port)
    client.subscribe(topic, 1)
    client.loop_start()
    done.wait(15)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


def test_released_bundles_are_published_once_in_order_by_the_lease_holder(ledger_url, broker, tmp_path):
    """Two workers on PostgreSQL, the one a SQLite file admits; a bundle released while no
    hub runs waits in the ledger, one released while they run goes out after it."""
    keys, demo = tmp_path / "keys", REPO / "firmware_config" / "indicators" / "demo.json"
    ok("keygen", "--out", keys, "--name", "ind1")
    changed = json.loads(demo.read_text())
    changed["indicators"][0]["action"]["channel"] = "yellow"
    (tmp_path / "v2.json").write_text(json.dumps(changed))
    common = ["--level", "central", "--scope", "central", "--key", keys / "ind1.key"]
    ok("sign", demo, "--version", 1, *common, "--out", tmp_path / "b1.json")
    ok("sign", tmp_path / "v2.json", "--version", 2, "--delta-from", demo, "--base-version", 1, *common,
       "--out", tmp_path / "d2.json")
    full, delta = (tmp_path / "b1.json").read_bytes(), (tmp_path / "d2.json").read_bytes()
    Ledger(ledger_url).close()  # the ledger a hub has served before
    received: list[bytes] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bundle-listener")
    subscribed = threading.Event()
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.on_message = lambda c, u, m: received.append(bytes(m.payload))
    workers = Workers(broker.port, ledger_url, tmp_path)
    ledger = Ledger(ledger_url)

    def published() -> int:
        return sum(1 for *_, at in ledger.bundles() if at)

    try:
        listener.connect("127.0.0.1", broker.port)
        listener.subscribe(topics.INDICATORS_CENTRAL, 1)
        listener.loop_start()
        assert subscribed.wait(15)
        assert "released, the hub publishes it on bcp/v1/indicators/central (retained)" in ok(
            "release", tmp_path / "b1.json", "--db", ledger_url)
        assert "NOT YET PUBLISHED" in ok("bundles", "--db", ledger_url)
        workers.start(2 if ledger_url.startswith("postgresql") else 1)
        wait_for(lambda: received == [full] and published() == 1, 30, what="the waiting bundle published")
        out = ok("release", tmp_path / "d2.json", tmp_path / "b1.json", "--db", ledger_url)
        assert "delta bundle central:central v2: released" in out and "v1: already released" in out
        wait_for(lambda: len(received) == 2 and published() == 2, 30, what="the delta published")
        assert received == [full, delta]
        logs = "".join((tmp_path / f"hub-{i}.log").read_text() for i in range(1, len(workers.procs) + 1))
        assert logs.count("hub_bundle_published") == 2  # by one worker, each once
        assert retained(broker.port, topics.INDICATORS_CENTRAL) == full  # a delta never replaces the full one
        assert "NOT YET" not in ok("bundles", "--db", ledger_url)
    finally:
        listener.loop_stop()
        listener.disconnect()
        workers.stop()
        ledger.close()


def test_a_file_that_is_not_a_bundle_is_not_released(tmp_path):
    Ledger(tmp_path / "c.db").close()
    (tmp_path / "x.json").write_text('{"indicators": []}')
    result = CliRunner().invoke(central, ["release", str(tmp_path / "x.json"), "--db", str(tmp_path / "c.db")])
    assert result.exit_code == 1 and "x.json: not a bundle: KeyError('bundle')" in result.output
    signed = {"level": "central", "scope": "central", "version": 1, "kind": "full"}
    (tmp_path / "b.json").write_text(json.dumps({"bundle": {"signed": signed}}))
    result = CliRunner().invoke(central, ["release", str(tmp_path / "b.json"), "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "no ledger at" in result.output  # a mistyped path makes no new ledger
    assert "no bundle released" in ok("bundles", "--db", tmp_path / "c.db")
