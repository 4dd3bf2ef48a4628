"""SyncClient against a real mosquitto and the real hub: delivery exactly once through
cuts, restarts, kill -9 and broker restarts; live events ahead of the backlog; status."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from testkit.waiting import wait_for

from edge_agent.central.broker import Endpoint, publish_once
from edge_agent.central.hub import Hub
from edge_agent.models import IndicatorBundleReceived, PreArrivalReceived, RauCommand, Rejected
from edge_agent.sync import topics

REPO = Path(__file__).resolve().parents[2]


def central_ns(db: Path, site: str = "bcp-a") -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(r[0])["n"] for r in conn.execute("SELECT payload FROM events WHERE site = ?", (site,))]
    finally:
        conn.close()


def test_events_reach_the_hub_once_and_the_outbox_empties(broker, hub, make_site):
    site = make_site(broker.port)
    ids = [site.append(("crossing", "hit", "plate")[n % 3], {"n": n}) for n in range(300)]
    site.client.start()
    wait_for(lambda: site.outbox() == 0, 30, what="outbox drained")
    assert sorted(central_ns(hub.db_path)) == list(range(300))
    assert sorted(hub.ledger.ids("bcp-a")) == sorted(ids)
    health = site.client.health()
    assert health["connected"] and health["acked"] >= 300 and health["last_ack_at"]


def test_puback_is_not_delivery_unacknowledged_rows_are_sent_again(broker, tmp_path, make_site):
    # No hub yet: the broker acknowledges every publish and drops them (no subscriber).
    site = make_site(broker.port, resend_timeout_s=1.0)
    for n in range(50):
        site.append("crossing", {"n": n})
    site.client.start()
    wait_for(lambda: site.client.health()["sent"] >= 50, 20, what="first sends")
    time.sleep(0.5)
    assert site.outbox() == 50  # PUBACKed by the broker, still not delivered
    late = Hub(Endpoint(port=broker.port), tmp_path / "late.db", client_id="rau-hub-late")
    late.start()
    try:
        wait_for(lambda: site.outbox() == 0, 30, what="resend after the hub appeared")
        assert sorted(central_ns(late.db_path)) == list(range(50))
        assert site.client.health()["resent"] >= 50
    finally:
        late.stop()


def test_broker_queue_overflow_loses_nothing(tmp_path, make_site):
    from edge_agent.central.mosquitto import PrivateBroker

    broker = PrivateBroker(tmp_path / "small-broker", max_queued_messages=20)
    broker.start()
    try:
        endpoint = Endpoint(port=broker.port)
        hub = Hub(endpoint, tmp_path / "c.db", client_id="rau-hub-q")
        hub.start()
        assert hub.connected.wait(15)
        hub.stop()  # the broker keeps its subscriptions, with a queue of 20
        site = make_site(broker.port, resend_timeout_s=1.5)
        for n in range(400):
            site.append("plate", {"n": n})
        site.client.start()
        wait_for(lambda: site.client.health()["sent"] >= 300, 20, what="sends while the hub is away")
        hub = Hub(endpoint, tmp_path / "c.db", client_id="rau-hub-q")
        hub.start()
        wait_for(lambda: site.outbox() == 0, 60, what="everything delivered despite broker drops")
        hub.stop()
        ns = central_ns(tmp_path / "c.db")
        assert sorted(ns) == list(range(400))
    finally:
        broker.stop()


def test_connection_cuts_during_the_drain(broker, proxy, hub, make_site):
    site = make_site(proxy.port, max_inflight=100, resend_timeout_s=2.0)
    for n in range(1000):
        site.append("crossing", {"n": n})
    site.client.start()
    for _ in range(5):
        wait_for(lambda: site.client.connected, 20, what="reconnect")
        time.sleep(0.15)
        proxy.cut()
    wait_for(lambda: site.outbox() == 0, 60, what="drain after cuts")
    ns = central_ns(hub.db_path)
    assert len(ns) == 1000 and sorted(ns) == list(range(1000))
    assert hub.counters["stored"] == 1000


def test_live_hits_go_ahead_of_the_backlog(broker, proxy, hub, make_site):
    site = make_site(proxy.port, drain_rate_per_s=250, max_inflight=100)
    proxy.hold(True)  # the link is down: an outage builds a backlog
    site.client.start()
    for n in range(1000):
        site.append("crossing", {"n": n})
    proxy.hold(False)
    wait_for(lambda: site.client.connected and site.client.health()["draining"], 30, what="reconnect")
    time.sleep(0.5)
    hit_id = site.append("hit", {"n": 99999, "indicator_id": "IND-1", "channel": "red"})
    wait_for(lambda: hit_id in set(hub.ledger.ids("bcp-a")), 30, interval_s=0.01, what="hit at the hub")
    stored_backlog = hub.ledger.count("bcp-a", "crossing")
    assert stored_backlog < 1000, "the hit waited for the whole backlog"
    wait_for(lambda: site.outbox() == 0, 60, what="backlog drained")


def test_status_is_retained_with_a_last_will(broker, proxy, make_site):
    site = make_site(proxy.port, keepalive_s=5)
    site.client.start()
    wait_for(lambda: site.client.connected, 20, what="connect")

    def retained_status() -> dict:
        got: list = []
        done = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"obs-{time.monotonic_ns()}")
        c.on_message = lambda *a: (got.append(json.loads(a[2].payload)), done.set())
        c.connect("127.0.0.1", broker.port)
        c.subscribe(topics.status("bcp-a"), 1)
        c.loop_start()
        done.wait(5)
        c.loop_stop()
        c.disconnect()
        return got[0] if got else {}

    assert wait_for(lambda: retained_status().get("state") == "online", 10, what="online")
    proxy.hold(True)  # the link dies without a goodbye: the broker publishes the will
    status = wait_for(lambda: (s := retained_status()).get("state") == "offline" and s, 20, what="will")
    assert status["clean"] is False
    proxy.hold(False)
    wait_for(lambda: retained_status().get("state") == "online", 30, what="online again")
    site.client.stop()
    status = retained_status()
    assert status["state"] == "offline" and status["clean"] is True


def test_downlink_routes_prearrivals_commands_and_bundles(broker, hub, make_site, tmp_path):
    site = make_site(broker.port)
    site.client.start()
    wait_for(lambda: site.client.connected, 20, what="connect")
    time.sleep(0.3)
    record = {
        "reference": "MK-2026-000123",
        "tractor_plate": "SK1234AB",
        "gross_kg": 24000,
        "consignor": {"name": "Exporter DOOEL"},
        "consignee": {"name": "Importer SH.P.K."},
        "office_of_entry": "bcp-a",
    }
    endpoint = Endpoint(port=broker.port)
    publish_once(
        endpoint,
        "seed-test",
        [
            (topics.SEED_INBOX, json.dumps(record).encode(), False),
            (topics.SEED_INBOX, json.dumps(record).encode(), False),  # a duplicate from the exchange
            (topics.SEED_INBOX, json.dumps({**record, "office_of_entry": ""}).encode(), False),
            (topics.down("bcp-a", "prearrival"), b'{"reference": "X"}', False),
            (topics.down("bcp-a", "command"), b'{"command": "ping"}', False),
            (topics.down("bcp-a", "command"), b'{"command": "self_destruct"}', False),
            (topics.INDICATORS_CENTRAL, b'{"bundle": {}}', True),
        ],
    )

    def kinds():
        return [type(e).__name__ for e in site.posted]

    wait_for(
        lambda: (
            kinds().count("Rejected") >= 2
            and "IndicatorBundleReceived" in kinds()
            and "PreArrivalReceived" in kinds()
            and "RauCommand" in kinds()
        ),
        20,
        what="downlink events",
    )
    pre = [e for e in site.posted if isinstance(e, PreArrivalReceived)]
    assert len(pre) == 1 and pre[0].record.reference == "MK-2026-000123"
    assert pre[0].record.expires_at is not None  # the site gives a record without expiry one
    assert hub.counters["routed"] == 1 and hub.counters["route_duplicates"] == 1 and hub.counters["route_rejected"] == 1
    rejected = [e for e in site.posted if isinstance(e, Rejected)]
    assert {r.source for r in rejected} == {"sync:prearrival", "sync:command"}
    assert site.client.health()["rejected"] == {"prearrival": 1, "command": 1}
    assert [e.command for e in site.posted if isinstance(e, RauCommand)] == ["ping"]
    bundle = [e for e in site.posted if isinstance(e, IndicatorBundleReceived)]
    assert bundle[0].topic == topics.INDICATORS_CENTRAL
    # ping is answered with a health event the hub records
    wait_for(lambda: hub.counters["health"] >= 1, 10, what="health after ping")
    publish_once(endpoint, "clean", [(topics.INDICATORS_CENTRAL, b"", True)])


def test_kill9_mid_drain_and_broker_restart(broker, central_serve, processes, tmp_path):
    """The agent is killed with SIGKILL mid-drain and the broker restarted mid-drain:
    every event reaches the central store exactly once."""
    db = tmp_path / "agent" / "agent.db"
    db.parent.mkdir()
    script = str(REPO / "tests" / "sync" / "outbox_process.py")
    total = 2000
    args = [
        sys.executable,
        script,
        "--db",
        str(db),
        "--port",
        str(broker.port),
        "--drain-rate",
        "400",
        "--resend-timeout",
        "2",
    ]
    first = processes([*args, "--count", str(total)], tmp_path / "agent1.log")
    wait_for(lambda: "written" in (tmp_path / "agent1.log").read_text(), 60, what="events written")
    wait_for(lambda: 300 < len(central_ns(central_serve)) < total, 30, what="drain under way")
    first.kill9()
    assert len(central_ns(central_serve)) < total
    second = processes(args, tmp_path / "agent2.log")
    wait_for(lambda: len(central_ns(central_serve)) > 1000, 30, what="drain resumed after restart")
    assert second.alive() and len(central_ns(central_serve)) < total, "the drain ended before the broker restart"
    broker.restart()
    wait_for(lambda: not second.alive(), 90, what="agent drained after broker restart")
    assert "drained" in (tmp_path / "agent2.log").read_text(), second.output()
    ns = central_ns(central_serve)
    assert len(ns) == total and sorted(ns) == list(range(total))


def test_mqtt5_site_and_hub(broker, make_site, tmp_path):
    hub5 = Hub(
        Endpoint(port=broker.port, protocol="5"), tmp_path / "c5.db", client_id="rau-hub-v5", shared_group="hubs"
    )
    hub5.start()
    try:
        assert hub5.connected.wait(15)
        site = make_site(broker.port, protocol="5")
        for n in range(100):
            site.append("crossing", {"n": n})
        site.client.start()
        wait_for(lambda: site.outbox() == 0, 30, what="drain over MQTT 5 with a shared subscription")
        assert sorted(central_ns(hub5.db_path)) == list(range(100))
    finally:
        hub5.stop()
