"""The broker configuration in firmware_config/mosquitto/: TLS with client certificates,
the certificate CN as username, and an ACL that keeps each site to its own topics."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from testkit.waiting import wait_for

from edge_agent.central.broker import Endpoint
from edge_agent.central.hub import Hub
from edge_agent.central.mosquitto import PrivateBroker
from edge_agent.ids import new_id
from edge_agent.sync import topics

REPO = Path(__file__).resolve().parents[2]
MOSQ = REPO / "firmware_config" / "mosquitto"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(
        ["sh", str(MOSQ / "make-certs.sh"), str(out), "bcp-a", "bcp-b", "rau-hub", "seed-feed"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@pytest.fixture()
def tls_broker(tmp_path, certs):
    # The shipped ACL file as is; the listener lines mirror the shipped mosquitto.conf.
    extra = f"""
allow_anonymous false
listener {{port}} 127.0.0.1
certfile {certs}/broker.crt
keyfile {certs}/broker.key
cafile {certs}/ca.crt
require_certificate true
use_identity_as_username true
acl_file {MOSQ / "bcp.acl"}
"""
    broker = PrivateBroker(tmp_path / "tls-broker", extra=extra)
    broker.start()
    yield broker
    broker.stop()


def endpoint(broker, certs, cn: str) -> Endpoint:
    return Endpoint(
        port=broker.port, tls_ca=certs / "ca.crt", tls_cert=certs / f"{cn}.crt", tls_key=certs / f"{cn}.key"
    )


class Raw:
    """A plain paho client holding one certificate identity."""

    def __init__(self, ep: Endpoint, client_id: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.ready = threading.Event()
        self.client = ep.client(client_id, persistent=False)
        self.client.on_connect = lambda c, u, f, rc, p: self.ready.set() if not rc.is_failure else None
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload), m.retain))
        self.client.connect(ep.host, ep.port)
        self.client.loop_start()
        assert self.ready.wait(15), "TLS connection refused"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, 1)
        assert done.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event(site: str, stream: str = "hit") -> bytes:
    return json.dumps({"id": new_id(), "stream": stream, "site": site, "indicator_id": "X"}).encode()


def test_site_cannot_publish_as_another_site_nor_write_indicators(tls_broker, certs, tmp_path):
    hub = Hub(endpoint(tls_broker, certs, "rau-hub"), tmp_path / "central.db", client_id="rau-hub")
    hub.start()
    assert hub.connected.wait(15)
    observer = Raw(endpoint(tls_broker, certs, "rau-hub"), "rau-hub-observer")
    observer.subscribe("bcp/v1/#")
    site_a = Raw(endpoint(tls_broker, certs, "bcp-a"), "bcp-a-raw")
    try:
        site_a.publish(topics.up("bcp-b", "hit"), event("bcp-b"))  # posing as site B
        site_a.publish(topics.INDICATORS_CENTRAL, b'{"bundle": "forged"}', retain=True)
        site_a.publish(topics.down("bcp-a", "ack"), b'{"ids": ["forged"]}')  # faking its own acks
        marker = event("bcp-a")
        site_a.publish(topics.up("bcp-a", "hit"), marker)  # allowed: its own upward topic
        wait_for(lambda: hub.ledger.count("bcp-a") == 1, what="site A's own event at the hub")
        # MQTT keeps one connection's messages in order: the forbidden ones would be here by now.
        wait_for(lambda: any(t == topics.up("bcp-a", "hit") for t, _, _ in observer.messages), what="observer")
        seen = {t for t, _, _ in observer.messages}
        assert topics.up("bcp-b", "hit") not in seen
        assert topics.INDICATORS_CENTRAL not in seen
        assert topics.down("bcp-a", "ack") not in {t for t, p, _ in observer.messages if b"forged" in p}
        assert hub.ledger.count("bcp-b") == 0
        # nothing retained on the indicators topic either
        late = Raw(endpoint(tls_broker, certs, "bcp-b"), "bcp-b-late")
        late.subscribe(topics.INDICATORS_CENTRAL)
        time.sleep(0.5)
        assert late.messages == []
        late.close()
    finally:
        site_a.close()
        observer.close()
        hub.stop()


def test_site_cannot_read_another_sites_downward_topics(tls_broker, certs):
    site_a = Raw(endpoint(tls_broker, certs, "bcp-a"), "bcp-a-reader")
    hub = Raw(endpoint(tls_broker, certs, "rau-hub"), "rau-hub-writer")
    try:
        site_a.subscribe("bcp/v1/bcp-b/down/#")
        site_a.subscribe("bcp/v1/bcp-a/down/#")
        hub.publish(topics.down("bcp-b", "prearrival"), b'{"secret": "B"}')
        hub.publish(topics.down("bcp-a", "prearrival"), b'{"mine": "A"}')
        wait_for(lambda: any(t == topics.down("bcp-a", "prearrival") for t, _, _ in site_a.messages), what="own")
        assert all(t != topics.down("bcp-b", "prearrival") for t, _, _ in site_a.messages)
    finally:
        site_a.close()
        hub.close()


def test_seed_feed_may_only_hand_records_to_the_hub(tls_broker, certs):
    feed = Raw(endpoint(tls_broker, certs, "seed-feed"), "seed-feed")
    site_b = Raw(endpoint(tls_broker, certs, "bcp-b"), "bcp-b-reader")
    observer = Raw(endpoint(tls_broker, certs, "rau-hub"), "rau-hub-obs")
    try:
        site_b.subscribe("bcp/v1/bcp-b/down/#")
        observer.subscribe("bcp/v1/hub/seed/#")
        feed.publish(topics.down("bcp-b", "prearrival"), b'{"bypass": true}')  # straight to a site: refused
        feed.publish(topics.SEED_INBOX, b'{"via": "hub"}')
        wait_for(lambda: observer.messages, what="record at the hub inbox")
        time.sleep(0.3)
        assert site_b.messages == []
    finally:
        for c in (feed, site_b, observer):
            c.close()


def test_a_client_without_a_certificate_is_refused(tls_broker, certs):
    refused = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="anon")
    client.tls_set(ca_certs=str(certs / "ca.crt"))
    client.on_connect = lambda c, u, f, rc, p: refused.set() if rc.is_failure else None
    try:
        client.connect("127.0.0.1", tls_broker.port)
        client.loop_start()
        time.sleep(1.0)
        assert not client.is_connected()
    except OSError:
        pass  # the TLS handshake itself failed: refused as well
    finally:
        client.loop_stop()


def test_sync_client_over_tls_end_to_end(tls_broker, certs, tmp_path):
    from datetime import datetime

    from edge_agent.config import SiteConfig, SyncConfig
    from edge_agent.models import AcksReceived
    from edge_agent.store import Store
    from edge_agent.sync.client import SyncClient

    hub = Hub(endpoint(tls_broker, certs, "rau-hub"), tmp_path / "central.db", client_id="rau-hub")
    hub.start()
    store = Store.open(tmp_path / "agent.db")
    posted: list = []
    for n in range(20):
        with store.transaction():
            store.outbox_append("crossing", {"n": n, "site": "bcp-a"}, datetime.now(UTC))
    sync = SyncConfig(
        enabled=True,
        broker_port=tls_broker.port,
        tls_ca=certs / "ca.crt",
        tls_cert=certs / "bcp-a.crt",
        tls_key=certs / "bcp-a.key",
        poll_interval_s=0.02,
    )
    client = SyncClient(
        SiteConfig(id="bcp-a", region="north", data_dir=tmp_path), sync, tmp_path / "agent.db", posted.append
    )
    client.start()
    try:
        wait_for(lambda: sum(len(e.ids) for e in posted if isinstance(e, AcksReceived)) >= 20, what="acks over TLS")
        assert hub.ledger.count("bcp-a") == 20
    finally:
        client.stop()
        hub.stop()
        store.close()
