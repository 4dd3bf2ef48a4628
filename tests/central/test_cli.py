"""The key ceremony and the hub's commands, end to end: keygen, root, install-root,
sign (full and delta), verify, publish through a real broker, serve + route + tail."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

import paho.mqtt.client as mqtt
from click.testing import CliRunner
from testkit.waiting import wait_for

from edge_agent.central.cli import central
from edge_agent.central.ledger import Ledger
from edge_agent.sync import topics
from edge_agent.sync.cli import sync

REPO = Path(__file__).resolve().parents[2]


def ok(cli, args, **kw):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kw)
    assert result.exit_code == 0, result.output
    return result.output


def sign_central(source: Path, version: int, out: Path, *options) -> str:
    """`central sign` of a central-scope bundle; `options` carry the keys, a delta base or a root."""
    return ok(central, ["sign", source, "--level", "central", "--scope", "central", "--version", version,
                        *options, "--out", out])


def site_config(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f"""
[site]
id = "bcp-a"
region = "north"
data_dir = "{tmp_path / "data"}"

[[lanes]]
id = "L1"
""")
    return path


def retained(port: int, topic: str) -> bytes | None:
    """The retained message on `topic`; only ever asked where one is expected, so the wait is long."""
    got: list[bytes] = []
    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"obs-{time.monotonic_ns()}")
    c.on_message = lambda cl, u, m: (got.append(bytes(m.payload)), done.set())
    c.connect("127.0.0.1", port)
    c.subscribe(topic, 1)
    c.loop_start()
    done.wait(15)
    c.loop_stop()
    c.disconnect()
    return got[0] if got else None


def test_key_ceremony_sign_verify_publish(tmp_path, broker):
    keys = tmp_path / "keys"
    for name in ("root1", "ind1", "ind2", "root2", "ind3", "north1"):
        assert "keyid" in ok(central, ["keygen", "--out", keys, "--name", name])
    assert (keys / "root1.key").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(central, ["keygen", "--out", str(keys), "--name", "root1"])
    assert again.exit_code != 0 and "refusing" in again.output

    ok(
        central,
        [
            "root",
            "--out",
            tmp_path / "root-1.json",
            "--version",
            1,
            "--root-key",
            keys / "root1.pub",
            "--role-key",
            f"central={keys / 'ind1.pub'}",
            "--role-key",
            f"central={keys / 'ind2.pub'}",
            "--role-threshold",
            "central=2",
            "--role-key",
            f"region/north={keys / 'north1.pub'}",
            "--sign",
            keys / "root1.key",
        ],
    )
    config = site_config(tmp_path)
    ok(sync, ["install-root", tmp_path / "root-1.json", "--config", config])

    demo = REPO / "firmware_config" / "indicators" / "demo.json"
    sign_central(demo, 1, tmp_path / "b1.json", "--key", keys / "ind1.key", "--key", keys / "ind2.key")
    assert "accepted" in ok(sync, ["verify", tmp_path / "b1.json", "--config", config])
    one_key = tmp_path / "b1-one.json"
    sign_central(demo, 1, one_key, "--key", keys / "ind1.key")
    result = CliRunner().invoke(sync, ["verify", str(one_key), "--config", str(config)])
    assert result.exit_code == 1 and "below_threshold" in result.output

    # Apply v1 as the core would, then a delta on it.
    from datetime import datetime

    from edge_agent.sync.bundles import Accepted, receive
    from edge_agent.sync.trust import TrustStore

    trust = TrustStore(tmp_path / "data" / "trust")
    assert isinstance(
        receive(
            trust,
            (tmp_path / "b1.json").read_bytes(),
            topics.INDICATORS_CENTRAL,
            site="bcp-a",
            region="north",
            now=datetime.now(UTC),
        ),
        Accepted,
    )
    changed = json.loads(demo.read_text())
    changed["indicators"][0]["action"]["channel"] = "yellow"
    (tmp_path / "v2.json").write_text(json.dumps(changed))
    sign_central(tmp_path / "v2.json", 2, tmp_path / "d2.json", "--key", keys / "ind1.key", "--key", keys / "ind2.key",
                 "--delta-from", demo, "--base-version", 1)
    assert (tmp_path / "d2.json").stat().st_size < (tmp_path / "b1.json").stat().st_size
    assert "accepted: central:central@2 (delta)" in ok(sync, ["verify", tmp_path / "d2.json", "--config", config])

    # Rotation: root v2 signed by the old and the new root key, shipped inside a bundle.
    ok(
        central,
        [
            "root",
            "--out",
            tmp_path / "root-2.json",
            "--version",
            2,
            "--root-key",
            keys / "root2.pub",
            "--role-key",
            f"central={keys / 'ind3.pub'}",
            "--role-key",
            f"region/north={keys / 'north1.pub'}",
            "--previous",
            tmp_path / "root-1.json",
            "--sign",
            keys / "root1.key",
            "--sign",
            keys / "root2.key",
        ],
    )
    sign_central(tmp_path / "v2.json", 2, tmp_path / "b2.json", "--key", keys / "ind3.key",
                 "--root", tmp_path / "root-2.json")
    assert "accepted" in ok(sync, ["verify", tmp_path / "b2.json", "--config", config])

    # Publish: the full bundle is retained, a delta is not (it must not replace the fallback).
    out = ok(central, ["publish", tmp_path / "b1.json", "--port", broker.port])
    assert "(retained)" in out
    ok(central, ["publish", tmp_path / "d2.json", "--port", broker.port])
    assert retained(broker.port, topics.INDICATORS_CENTRAL) == (tmp_path / "b1.json").read_bytes()


def test_each_level_is_signed_by_its_own_role_from_the_ceremony_on(tmp_path):
    keys = tmp_path / "keys"
    for name in ("root1", "central1", "north1", "root2", "north2"):
        ok(central, ["keygen", "--out", keys, "--name", name])
    legacy = CliRunner().invoke(central, ["root", "--out", str(tmp_path / "r.json"), "--version", "1", "--root-key",
                                          str(keys / "root1.pub"), "--indicators-key", str(keys / "central1.pub"),
                                          "--sign", str(keys / "root1.key")])
    assert legacy.exit_code != 0 and "--role-key central=" in legacy.output
    out = ok(central, ["root", "--out", tmp_path / "root-1.json", "--version", 1, "--root-key", keys / "root1.pub",
                       "--role-key", f"central={keys / 'central1.pub'}",
                       "--role-key", f"region/north={keys / 'north1.pub'}", "--sign", keys / "root1.key"])
    assert "region/north" in out and "central" in out
    config = site_config(tmp_path)
    assert "region/north             1 of 1" in ok(sync, ["install-root", tmp_path / "root-1.json", "--config", config])
    demo = REPO / "firmware_config" / "indicators" / "demo.json"

    # At the ceremony: the tool refuses to write a central bundle with the desk's key.
    refused = CliRunner().invoke(central, ["sign", str(demo), "--level", "central", "--scope", "central",
                                           "--version", "1", "--key", str(keys / "north1.key"),
                                           "--check-root", str(tmp_path / "root-1.json"),
                                           "--out", str(tmp_path / "c1.json")])
    assert refused.exit_code != 0 and "role central" in refused.output
    assert not (tmp_path / "c1.json").exists()
    # Made anyway (without the check), the site refuses it.
    sign_central(demo, 1, tmp_path / "c1.json", "--key", keys / "north1.key")
    rejected = CliRunner().invoke(sync, ["verify", str(tmp_path / "c1.json"), "--config", str(config)])
    assert rejected.exit_code == 1 and "rejected: bad_signature: " in rejected.output
    # The desk signs its own region's set.
    ok(central, ["sign", demo, "--level", "region", "--scope", "north", "--version", 1, "--key", keys / "north1.key",
                 "--check-root", tmp_path / "root-1.json", "--out", tmp_path / "n1.json"])
    assert "signed by role region/north" in ok(sync, ["verify", tmp_path / "n1.json", "--config", config])

    # A reset of north's floor that keeps north's key is refused before it leaves the RAU.
    kept = CliRunner().invoke(central, ["root", "--out", str(tmp_path / "root-2.json"), "--version", "2",
                                        "--root-key", str(keys / "root2.pub"),
                                        "--role-key", f"central={keys / 'central1.pub'}",
                                        "--role-key", f"region/north={keys / 'north1.pub'}",
                                        "--reset-floor", "region/north", "--previous", str(tmp_path / "root-1.json"),
                                        "--sign", str(keys / "root1.key"), "--sign", str(keys / "root2.key")])
    assert kept.exit_code != 0 and "could be replayed" in kept.output
    ok(central, ["root", "--out", tmp_path / "root-2.json", "--version", 2, "--root-key", keys / "root2.pub",
                 "--role-key", f"central={keys / 'central1.pub'}", "--role-key", f"region/north={keys / 'north2.pub'}",
                 "--reset-floor", "region/north", "--previous", tmp_path / "root-1.json",
                 "--sign", keys / "root1.key", "--sign", keys / "root2.key"])


def test_sync_status_reports_outbox_and_trust(tmp_path):
    from datetime import datetime

    from edge_agent.store import Store

    config = site_config(tmp_path)
    store = Store.open(tmp_path / "data" / "agent.db")
    with store.transaction():
        store.outbox_append("hit", {"x": 1}, datetime.now(UTC))
        store.outbox_append("media", {"x": 1}, datetime.now(UTC))
    store.close()
    report = json.loads(ok(sync, ["status", "--config", config, "--json"]))
    assert {(r["stream"], r["class"], r["rows"]) for r in report["outbox"]} == {
        ("hit", "customs", 1),
        ("media", "other", 1),
    }
    assert report["root_version"] is None and report["customs_alarm"] is False
    assert "NOT INSTALLED" in ok(sync, ["status", "--config", config])


def test_serve_route_and_tail(tmp_path, broker, served_hub):
    db, _ = served_hub
    record = {
        "reference": "SEED-1",
        "tractor_plate": "SK123AB",
        "gross_kg": 20000,
        "consignor": {"name": "a"},
        "consignee": {"name": "b"},
        "office_of_entry": "XK0101",
    }
    (tmp_path / "r.json").write_text(json.dumps(record))
    received: list[tuple[str, bytes]] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="site-a-listener")
    subscribed = threading.Event()
    c.on_message = lambda cl, u, m: received.append((m.topic, bytes(m.payload)))
    c.on_subscribe = lambda *args: subscribed.set()
    c.connect("127.0.0.1", broker.port)
    c.subscribe("bcp/v1/+/down/#", 1)
    c.loop_start()
    try:
        assert subscribed.wait(15), "the listener's subscription was not acknowledged"
        ok(central, ["route", tmp_path / "r.json", "--port", broker.port])
        # the simulator routes through the same inbox
        feed = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_agent.simulators.seed_feed",
                "--port",
                str(broker.port),
                "--office",
                "bcp-b",
                "--count",
                "3",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert feed.returncode == 0, feed.stderr
        wait_for(lambda: len(received) >= 4, 15, what="four routed pre-arrival records")
        by_topic = [t for t, _ in received]
        assert by_topic.count(topics.down("bcp-a", "prearrival")) == 1
        assert by_topic.count(topics.down("bcp-b", "prearrival")) == 3
        # a hit published by a site is stored, acknowledged, and shown by tail
        hit = {
            "id": "01JTESTHIT0000000000000000",
            "stream": "hit",
            "site": "bcp-a",
            "indicator_id": "C-WEIGHT-10",
            "channel": "red",
            "reference": "SEED-1",
        }
        c.publish(topics.up("bcp-a", "hit"), json.dumps(hit), qos=1).wait_for_publish(5)
        wait_for(lambda: any(t == topics.down("bcp-a", "ack") for t, _ in received), 15, what="the hub's ack")
        acks = [json.loads(p) for t, p in received if t == topics.down("bcp-a", "ack")]
        assert acks == [{"ids": [hit["id"]]}]
        out = ok(central, ["tail", "--db", db, "--all", "--no-follow"])
        assert "bcp-a HIT C-WEIGHT-10 -> red ref=SEED-1" in out
        ledger = Ledger(db)
        assert ledger.count("bcp-a", "hit") == 1
        ledger.close()
    finally:
        c.loop_stop()
        c.disconnect()


def test_sites_shows_each_sites_link_devices_and_lanes_as_the_hub_heard_them(tmp_path, broker, served_hub):
    db, _ = served_hub
    health = {"id": "01JTESTHEALTH00000000000000", "stream": "health", "site": "bcp-a", "connected": True,
              "backlog": 3, "lanes": {
                  "devices": {"ScaleReader:L1": {"up": True, "frames_per_s": 9.5},
                              "CctvCamera:L1:front": {"up": False, "frames_per_s": 0.0}},
                  "gates": {"L1": {"barrier": "closed", "lights": "red", "fault": "no closed read-back"}},
                  "phases": {"L1": "held"}}}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="site-a-health")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        c.publish(topics.status("bcp-a"), json.dumps({"state": "online"}), qos=1, retain=True).wait_for_publish(5)
        c.publish(topics.up("bcp-a", "health"), json.dumps(health), qos=1).wait_for_publish(5)
        anchor = {"id": "01JTESTANCHOR0000000000000", "stream": "audit_anchor", "site": "bcp-a", "seq": 17,
                  "hash": "ab" * 32, "at": "2026-11-30T08:00:00+00:00"}
        c.publish(topics.up("bcp-a", "audit_anchor"), json.dumps(anchor), qos=1).wait_for_publish(5)
        wait_for(lambda: all(part in ok(central, ["sites", "--db", db]) for part in ("frames/s", "entry 17")),
                 15, what="the site's health and anchor at the hub")
    finally:
        c.loop_stop()
        c.disconnect()
    lines = ok(central, ["sites", "--db", db]).splitlines()
    assert lines[0].startswith("bcp-a  online since ") and "backlog 3" in lines[0]
    assert "audit anchored to entry 17" in lines[0]
    assert any("CctvCamera:L1:front" in line and "DOWN" in line for line in lines)
    assert any("ScaleReader:L1" in line and "up" in line and "9.5 frames/s" in line for line in lines)
    assert "  lane L1: held, barrier closed, lights red  FAULT: no closed read-back" in lines
    report = json.loads(ok(central, ["sites", "--db", db, "--json"]))
    assert report[0]["health"]["lanes"]["phases"] == {"L1": "held"} and report[0]["audit_anchor"] == 17
