"""The RAU beside the demo: a private mosquitto on a loopback port and the central hub.

With it a newcomer sees the whole link work: a bundle signed with a key made on the
spot is verified and applied, the SEED pre-arrival records reach the site through the
hub's routing, and every event the lanes produce is stored centrally and acknowledged
(the outbox empties). Without mosquitto installed the demo runs offline and says so.

With `rau_console_port` the RAU's console serves the hub's ledger too, with two demo
users, an analyst and a senior analyst, each with a signing key made on the spot; the
site's root then wants both for the central set (threshold 2), so an indicator drafted
by one and approved by the other reaches the demo's lanes (docs/central.md).
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.central.broker import Endpoint, publish_once
from edge_agent.central.console.app import create_app, server_for
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.hub import Hub
from edge_agent.central.ledger import Ledger
from edge_agent.central.mosquitto import PrivateBroker, find_mosquitto
from edge_agent.central.release import release
from edge_agent.config import SyncConfig
from edge_agent.models import PreArrival
from edge_agent.sync import topics
from edge_agent.sync.bundles import build_full, pack
from edge_agent.sync.trust import TrustStore, generate_key, make_root, sign

DEMO_OFFICE = "XK000301"  # the office of entry the scenario's records name
# The RAU console's demo users: the two people who publish an indicator set.
RAU_CONSOLE_USERS = {"analyst": "analyst", "senior": "senior_analyst"}

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

    def __init__(self, workdir: Path, site_id: str, *, rau_console_port: int | None = None,
                 password: str = "") -> None:
        self.workdir = Path(workdir)
        self.site_id = site_id
        self.broker: Any = None
        self.hub: Any = None
        self._signing_keys: list[str] = []
        self.rau_console_port = rau_console_port
        self.password = password
        self.console_url = ""
        self._console: Any = None  # (app, server, thread)

    def start(self) -> None:
        self.broker = PrivateBroker(self.workdir / "broker").start()
        self.hub = Hub(Endpoint(port=self.broker.port), self.workdir / "central.db", client_id="rau-hub-demo",
                       offices={DEMO_OFFICE: self.site_id})
        self.hub.start()
        if not self.hub.connected.wait(15):
            raise RuntimeError("the demo's central hub did not connect to its broker")
        root_key, root_public = generate_key()
        now = datetime.now(UTC)
        if self.rau_console_port is None:
            # The demo publishes only the central set: its key is the central role's, one signature.
            private, public = generate_key()
            self._signing_keys, central = [private], ([public], 1)
        else:
            # One key per person, both needed: the analyst's submission and the senior's approval.
            keys_dir = self.workdir / "rau-keys"
            keys_dir.mkdir(parents=True, exist_ok=True)
            publics = []
            for username in RAU_CONSOLE_USERS:
                private, public = generate_key()
                (keys_dir / f"{username}.key").write_text(private + "\n")
                (keys_dir / f"{username}.key").chmod(0o600)
                self._signing_keys.append(private)
                publics.append(public)
            central = (publics, 2)
        root = sign(make_root(version=1, expires=now + timedelta(days=365), root_keys=[root_public],
                              roles={"central": central}), [root_key])
        TrustStore(self.workdir / "trust").install_root(root)  # as at provisioning
        if self.rau_console_port is not None:
            self._start_console(self.workdir / "rau-keys", self.rau_console_port)

    def _start_console(self, keys_dir: Path, port: int) -> None:
        app = create_app(RauConsoleSettings(ledger=str(self.workdir / "central.db"),
                                            users_db=self.workdir / "rau_console.db", keys_dir=keys_dir))
        for username, role in RAU_CONSOLE_USERS.items():
            app.state.console.accounts.add_user(username, role, self.password, full_name=f"Demo {username}",
                                                replace=True)
        sock = socket.create_server(("127.0.0.1", port))
        server = server_for(app)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rau-console", daemon=True)
        thread.start()
        self._console = (app, server, thread)
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.console_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def sync_config(self) -> SyncConfig:
        return SyncConfig(enabled=True, broker_port=self.broker.port, office_codes=[DEMO_OFFICE],
                          resend_timeout_s=5.0, health_interval_s=30.0)

    def publish_bundle(self) -> None:
        now = datetime.now(UTC)
        body = build_full(BUNDLE_DOCUMENT, level="central", scope="central", version=1,
                          expires=now + timedelta(days=30), created=now)
        payload = pack(body, self._signing_keys)
        if self._console is None:
            self._publish([(topics.INDICATORS_CENTRAL, payload, True)])
            return
        # Released through the hub, as the console releases: the console then numbers its
        # sets after this one, and the hub publishes it.
        ledger = Ledger(self.workdir / "central.db")
        try:
            release(ledger, payload)
        finally:
            ledger.close()

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
        if self._console is not None:
            app, server, thread = self._console
            server.should_exit = True
            thread.join(10)
            app.state.console.close()
        if self.hub is not None:
            self.hub.stop()
        if self.broker is not None:
            self.broker.stop()

    def _publish(self, messages: list[tuple[str, bytes, bool]]) -> None:
        publish_once(Endpoint(port=self.broker.port), f"rau-demo-{time.monotonic_ns()}", messages)
