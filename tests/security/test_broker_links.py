"""The shipped broker configuration with the real hub and the real site client: client ids
tied to certificates, what the hub stores, and who cannot connect at all."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from testkit.shipped_broker import MOSQ, OTHER_SITE, SITE, Identity
from testkit.waiting import wait_for

from edge_agent.central.broker import Endpoint
from edge_agent.central.hub import Hub
from edge_agent.config import SiteConfig, SyncConfig
from edge_agent.ids import new_id
from edge_agent.models import AcksReceived
from edge_agent.store import Store
from edge_agent.sync import topics
from edge_agent.sync.client import SyncClient


def endpoint(broker, cn: str) -> Endpoint:
    certs = broker.certs
    return Endpoint(port=broker.port, tls_ca=certs / "ca.crt", tls_cert=certs / f"{cn}.crt",
                    tls_key=certs / f"{cn}.key")


def event(site: str) -> bytes:
    return json.dumps({"id": new_id(), "stream": "hit", "site": site, "indicator_id": "X"}).encode()


@pytest.fixture()
def hub(shipped_broker, tmp_path):
    h = Hub(endpoint(shipped_broker, "rau-hub"), tmp_path / "central.db", client_id="rau-hub")
    h.start()
    assert h.connected.wait(15)
    yield h
    h.stop()


def test_a_site_presenting_another_sites_client_id_does_not_knock_it_off(shipped_broker):
    """Issue 14, item 4: the client id is the certificate's CN, whatever the client asks for."""
    site_a = Identity(shipped_broker, SITE, client_id=SITE)
    impostor = Identity(shipped_broker, OTHER_SITE, client_id=SITE)  # site B's certificate, site A's id
    try:
        site_a.round_trip()  # answered on its first connection, after the impostor's CONNACK
        assert (site_a.connects, site_a.disconnects) == (1, 0), "site A was knocked off its link"
        # The impostor's session is site B's own: site B connecting again takes its place.
        site_b = Identity(shipped_broker, OTHER_SITE, client_id="anything-else")
        try:
            wait_for(lambda: impostor.disconnects, what="site B's new connection to take the old one's place")
            assert (site_a.connects, site_a.disconnects) == (1, 0)
        finally:
            site_b.close()
    finally:
        impostor.close()
        site_a.close()


def test_the_agent_asks_for_its_site_id_as_client_id(tmp_path):
    client = SyncClient(SiteConfig(id=SITE, region="xk-rs", data_dir=tmp_path), SyncConfig(enabled=True),
                        tmp_path / "agent.db", lambda event: None)
    assert client.client_id == SITE  # the certificate's CN, which the broker makes the client id anyway


def test_the_hub_stores_a_sites_own_events_and_never_one_posing_as_another(shipped_broker, hub):
    site_a = Identity(shipped_broker, SITE)
    try:
        assert not site_a.publish(topics.up(OTHER_SITE, "hit"), event(OTHER_SITE))  # posing as site B
        assert not site_a.publish(topics.down(SITE, "ack"), b'{"ids": ["forged"]}')  # faking its own acks
        assert site_a.publish(topics.up(SITE, "hit"), event(SITE))
        # One connection's messages arrive in order: the refused ones would be stored by now.
        wait_for(lambda: hub.ledger.count(SITE) == 1, what="site A's own event at the hub")
        assert hub.ledger.count(OTHER_SITE) == 0
    finally:
        site_a.close()


def test_the_site_client_drains_its_outbox_over_tls_end_to_end(shipped_broker, hub, tmp_path):
    store = Store.open(tmp_path / "agent.db")
    posted: list = []
    for n in range(20):
        with store.transaction():
            store.outbox_append("crossing", {"n": n, "site": SITE}, datetime.now(UTC))
    certs = shipped_broker.certs
    sync = SyncConfig(enabled=True, broker_port=shipped_broker.port, tls_ca=certs / "ca.crt",
                      tls_cert=certs / f"{SITE}.crt", tls_key=certs / f"{SITE}.key", poll_interval_s=0.02)
    client = SyncClient(SiteConfig(id=SITE, region="xk-rs", data_dir=tmp_path), sync, tmp_path / "agent.db",
                        posted.append)
    client.start()
    try:
        wait_for(lambda: sum(len(e.ids) for e in posted if isinstance(e, AcksReceived)) >= 20, what="acks over TLS")
        assert hub.ledger.count(SITE) == 20
    finally:
        client.stop()
        store.close()


def test_a_client_without_a_certificate_is_refused(shipped_broker):
    refused, connected = threading.Event(), threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=SITE)
    client.tls_set(ca_certs=str(shipped_broker.certs / "ca.crt"))
    client.on_connect = lambda c, u, f, rc, p: (refused if rc.is_failure else connected).set()
    client.on_disconnect = lambda *a: refused.set()
    client.on_connect_fail = lambda *a: refused.set()
    try:
        client.connect("127.0.0.1", shipped_broker.port)
        client.loop_start()
    except (OSError, ssl.SSLError):
        refused.set()  # the TLS handshake itself failed
    try:
        assert refused.wait(15), "a client without a certificate was not refused"
        assert not connected.is_set()
    finally:
        client.loop_stop()


@pytest.mark.parametrize("name", ["hub", "indicators", "broker", "ca", "xk/a", "xk+a", "#", "-x", ".x", ""])
def test_make_certs_refuses_reserved_and_malformed_client_names(tmp_path, name):
    result = subprocess.run(["sh", str(MOSQ / "make-certs.sh"), str(tmp_path / "certs"), name],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "make-certs.sh:" in result.stderr
    assert not (tmp_path / "certs").exists() or not list((tmp_path / "certs").glob("*.crt"))
