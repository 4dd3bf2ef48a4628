"""The link survives a national outage: sites come back spread out, not in step, and a
link that died without a word is noticed within twice the keepalive."""

from __future__ import annotations

from testkit.waiting import wait_for

from edge_agent.central.mosquitto import PrivateBroker
from edge_agent.config import SyncConfig


def test_fifty_sites_reconnect_spread_out_after_the_broker_comes_back(tmp_path, make_site):
    broker = PrivateBroker(tmp_path / "broker").start()
    try:
        sites = [make_site(broker.port, site_id=f"bcp-{n:02d}", reconnect_base_s=1.0, reconnect_cap_s=4.0,
                           health_interval_s=3600) for n in range(50)]
        for site in sites:
            site.client.start()
        wait_for(lambda: all(s.client.connected for s in sites), 30, what="fifty sites connected")
        broker.stop()
        wait_for(lambda: not any(s.client.connected for s in sites), 30, what="every site saw the outage")
        before = {s.client.site.id: s.client.last_connect_at for s in sites}
        # Long enough that each site has failed a few attempts and its backoff has grown.
        wait_for(lambda: min(s.client.health()["connect_failed"] for s in sites) >= 2, 30,
                 what="every site retried")
        broker.start()
        wait_for(lambda: all(s.client.connected and s.client.last_connect_at != before[s.client.site.id]
                             for s in sites), 60, what="fifty sites back")
        back = sorted(s.client.last_connect_at.timestamp() for s in sites)
        densest = max(sum(1 for t in back if start <= t < start + 0.25) for start in back)
        # In step (a fixed doubling), all fifty would come within a few milliseconds.
        assert densest <= 25, f"{densest} of 50 sites reconnected within 250 ms"
        assert back[-1] - back[0] >= 1.0, f"reconnects spread over only {back[-1] - back[0]:.2f} s"
    finally:
        broker.stop()


def test_a_half_open_link_is_given_up_within_twice_the_keepalive(broker, proxy, make_site):
    keepalive_s = 2
    site = make_site(proxy.port, keepalive_s=keepalive_s)
    site.client.start()
    wait_for(lambda: site.client.connected, 15, what="connected through the proxy")
    proxy.freeze()
    # The bound is 2 x keepalive; the wait allows a loaded machine some slack beyond it.
    # Without a keepalive the frozen link would stay "connected" for as long as TCP waits.
    wait_for(lambda: not site.client.connected, 2 * keepalive_s + 6, what="the dead link noticed")
    proxy.freeze(False)
    proxy.cut()
    wait_for(lambda: site.client.connected, 20, what="the link back after the outage")


def test_the_default_keepalive_notices_a_dead_link_within_twenty_seconds():
    # docs/sync.md promises it; the site file may shorten it, never needs to lengthen it.
    assert 2 * SyncConfig().keepalive_s <= 20


def test_hub_workers_draw_their_reconnect_waits_too(tmp_path):
    from edge_agent.central.broker import Endpoint
    from edge_agent.central.hub import Hub

    broker = PrivateBroker(tmp_path / "broker").start()
    hubs = [Hub(Endpoint(port=broker.port), tmp_path / f"central-{n}.db", client_id=f"rau-hub-{n}") for n in range(3)]
    try:
        for hub in hubs:
            hub.start()
        wait_for(lambda: all(h.connected.is_set() for h in hubs), 20, what="three hub workers connected")
        broker.stop()
        wait_for(lambda: all(h.connect_failed >= 2 for h in hubs), 60, what="each worker retried twice")
        waits = {round(h.reconnects.last_delay_s, 6) for h in hubs}
        assert len(waits) == 3, f"three workers, the same waits: {waits}"  # drawn, not a fixed doubling
        broker.start()
        wait_for(lambda: all(h.connected.is_set() for h in hubs), 60, what="the workers back")
    finally:
        for hub in hubs:
            hub.stop()
        broker.stop()


def test_a_hub_with_a_site_registry_refuses_other_names_and_keeps_them_unacknowledged(broker, tmp_path, make_site):
    from edge_agent.central.broker import Endpoint
    from edge_agent.central.hub import Hub
    from edge_agent.central.ledger import Ledger

    hub = Hub(Endpoint(port=broker.port), tmp_path / "central.db", client_id="rau-hub-registry",
              sites=frozenset({"bcp-a"}))
    hub.start()
    try:
        assert hub.connected.wait(15)
        known, stray = make_site(broker.port, site_id="bcp-a"), make_site(broker.port, site_id="bcp-stray")
        known.append("crossing", {"n": 1})
        stray.append("crossing", {"n": 2})
        known.client.start()
        stray.client.start()
        wait_for(lambda: known.outbox() == 0, 20, what="the registered site's event acknowledged")
        wait_for(lambda: hub.counters["unknown_site"] >= 1, 20, what="the stray name refused")
        assert stray.outbox() == 1, "refused, so not acknowledged: the site keeps it"
    finally:
        hub.stop()
    ledger = Ledger(tmp_path / "central.db")
    try:
        assert ledger.latest("bcp-a", "crossing", "n") is not None
        assert ledger.latest("bcp-stray", "crossing", "n") is None
    finally:
        ledger.close()
