"""The RAU beside the demo: a private mosquitto on a loopback port and the central hub.

With it a newcomer sees the whole link work: a bundle signed with a key made on the
spot is verified and applied, the SEED pre-arrival records reach the site through the
hub's routing, and every event the lanes produce is stored centrally and acknowledged
(the outbox empties). Without mosquitto installed the demo runs offline and says so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.central.broker import Endpoint, publish_once
from edge_agent.central.hub import Hub
from edge_agent.central.ledger import Ledger
from edge_agent.central.mosquitto import PrivateBroker, find_mosquitto
from edge_agent.config import SyncConfig
from edge_agent.models import PreArrival
from edge_agent.sync import topics
from edge_agent.sync.bundles import build_full, pack
from edge_agent.sync.trust import TrustStore, generate_key, make_root, sign

DEMO_OFFICE = "XK000301"  # the office of entry the scenario's records name

# A central indicator that goes out signed. It hits none of the scenario's trucks (no
# arms in the demo's goods), so the outcomes are the same online and offline.
BUNDLE_DOCUMENT = {
    "format": "bcp-indicators/1",
    "version": "central-demo-1",
    "indicators": [{
        "id": "C-ARMS-93",
        "version": 1,
        "level": "central",
        "title": "Arms and ammunition (HS chapter 93)",
        "when": {"field": "items.hs_code", "op": "prefix", "value": "93"},
        "action": {"channel": "red"},
        "priority": 95,
        "instructions": "Stop the truck; call the RAU duty officer before opening the load.",
        "owner": "RAU",
        "author": "rau.analyst",
    }],
}


def broker_installed() -> bool:
    return find_mosquitto() is not None


class DemoRau:
    """`start()` before the agent (it installs the site's root of trust), then `publish_bundle()`,
    `route()` the records; `delivered()` counts what the hub stored."""

    def __init__(self, workdir: Path, site_id: str) -> None:
        self.workdir = Path(workdir)
        self.site_id = site_id
        self.broker: Any = None
        self.hub: Any = None
        self._signing_key = ""

    def start(self) -> None:
        self.broker = PrivateBroker(self.workdir / "broker").start()
        self.hub = Hub(Endpoint(port=self.broker.port), self.workdir / "central.db", client_id="rau-hub-demo",
                       offices={DEMO_OFFICE: self.site_id})
        self.hub.start()
        if not self.hub.connected.wait(15):
            raise RuntimeError("the demo's central hub did not connect to its broker")
        root_key, root_public = generate_key()
        self._signing_key, signing_public = generate_key()
        now = datetime.now(UTC)
        # The demo publishes only the central set: its key is the central role's, one signature.
        root = sign(make_root(version=1, expires=now + timedelta(days=365), root_keys=[root_public],
                              roles={"central": ([signing_public], 1)}), [root_key])
        TrustStore(self.workdir / "trust").install_root(root)  # as at provisioning

    def sync_config(self) -> SyncConfig:
        return SyncConfig(enabled=True, broker_port=self.broker.port, office_codes=[DEMO_OFFICE],
                          resend_timeout_s=5.0, health_interval_s=30.0)

    def publish_bundle(self) -> None:
        now = datetime.now(UTC)
        body = build_full(BUNDLE_DOCUMENT, level="central", scope="central", version=1,
                          expires=now + timedelta(days=30), created=now)
        self._publish([(topics.INDICATORS_CENTRAL, pack(body, [self._signing_key]), True)])

    def route(self, records: list[PreArrival]) -> None:
        """Hand the records to the hub as the regional exchange would."""
        self._publish([(topics.SEED_INBOX, r.model_dump_json().encode(), False) for r in records])

    def delivered(self) -> int:
        ledger = Ledger(self.workdir / "central.db")
        try:
            return ledger.count(site=self.site_id)
        finally:
            ledger.close()

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.stop()
        if self.broker is not None:
            self.broker.stop()

    def _publish(self, messages: list[tuple[str, bytes, bool]]) -> None:
        publish_once(Endpoint(port=self.broker.port), f"rau-demo-{time.monotonic_ns()}", messages)
