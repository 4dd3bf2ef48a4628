"""Two people publish an indicator and a truck hits it: a real mosquitto, the hub, a real
agent whose root of trust needs two signatures for the central set, and the RAU console
in a real headless Chromium.

The analyst drafts one indicator with the form (apples, HS 0808, to yellow) and submits
it, signed with her key; a senior analyst approves it, signed with his; the hub
publishes the bundle; the site verifies both signatures and applies it; the rig's plain
truck (apples) then hits it at the lane, and the hit reaches the hub's ledger and the
console's hits page. The raise that holds a truck is test_rau_console_e2e.py's rig and
test (the same hub, agent and console), not repeated here.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from testkit import console_rig as rig
from testkit.browser import chromium_page
from testkit.waiting import wait_for

from edge_agent.central.broker import Endpoint
from edge_agent.central.console.app import create_app, server_for
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.hub import Hub
from edge_agent.central.ledger import Ledger
from edge_agent.config import SyncConfig
from edge_agent.sync.trust import TrustStore, generate_key, make_root, sign

PASSWORD = "correct horse battery"


@pytest.fixture
def linked(broker, tmp_path):
    """(the hub's ledger path, the console's keys directory, the agent): the site's root
    names ana's and sam's keys for the central role, threshold 2."""
    from gpiozero.pins.mock import MockFactory

    keys = tmp_path / "keys"
    keys.mkdir()
    publics = []
    for name in ("ana", "sam"):
        private, public = generate_key()
        (keys / f"{name}.key").write_text(private + "\n")
        publics.append(public)
    root_key, root_public = generate_key()
    root = sign(make_root(version=1, expires=datetime.now(UTC) + timedelta(days=30), root_keys=[root_public],
                          roles={"central": (publics, 2)}), [root_key])
    TrustStore(tmp_path / "site" / "trust").install_root(root)  # as at provisioning

    db = tmp_path / "central.db"
    hub = Hub(Endpoint(port=broker.port), db, client_id=f"rau-hub-{os.getpid()}", duties_interval_s=0.2)
    hub.start()
    assert hub.connected.wait(15)
    config = rig.site_config(tmp_path / "site")
    config = config.model_copy(update={"sync": SyncConfig(enabled=True, broker_port=broker.port,
                                                          health_interval_s=0.5)})
    agent = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path / "site")
    agent.start()
    try:
        wait_for(lambda: agent.sync.health()["connected"], 30, what="the agent to connect")
        yield db, keys, agent
    finally:
        agent.stop()
        hub.stop()


@pytest.fixture
def page():
    with chromium_page(30_000) as page:
        yield page


def log_in(page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_in_a_browser_two_people_publish_an_indicator_and_a_truck_hits_it(linked, tmp_path, page):
    db, keys, agent = linked
    app = create_app(RauConsoleSettings(ledger=str(db), users_db=tmp_path / "rau_console.db", refresh_s=1.0,
                                        keys_dir=keys))
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    app.state.console.accounts.add_user("sam", "senior_analyst", PASSWORD)
    server = server_for(app)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_for(lambda: server.started, 15, what="the console to serve")
        log_in(page, url, "ana")
        page.click("nav >> text=Indicators")
        page.click("#new-draft-submit")
        page.wait_for_url(url + "/indicators/*")
        draft_url = page.url
        page.fill("#ind-id", "C-APPLES-0808")
        page.fill("#ind-title", "Apples")
        page.select_option("#ind-field", "items.hs_code")
        page.select_option("#ind-op", "prefix")
        page.fill("#ind-value", "0808")
        page.select_option("#ind-channel", "yellow")
        page.fill("#ind-instructions", "Look under the crates.")
        page.click("#ind-submit")
        expect(page.locator("#valid")).to_be_visible()
        expect(page.locator("#document")).to_contain_text("C-APPLES-0808")
        page.click("#submit-draft")
        expect(page.locator("#draft-status")).to_have_text("submitted")
        page.click("text=Log out")

        log_in(page, url, "sam")
        page.goto(draft_url)
        page.click("#approve-draft")
        expect(page.locator("#draft-status")).to_have_text("approved")
        expect(page.locator("#approved-by")).to_have_text("sam")

        wait_for(lambda: agent.core.counters["bundles_applied"] >= 1, 30, what="the site to apply the bundle")
        snap = rig.drive_in(agent, "L1", rig.plain_record(), "BG555XY", 18000.0)
        assert snap["channel"] == "yellow"
        page.goto(url + "/hits")
        expect(page.locator("main")).to_contain_text("C-APPLES-0808")  # the hit, stored at the hub
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.console.close()
    ledger = Ledger(db)
    try:
        assert any(hit.get("indicator_id") == "C-APPLES-0808" for _, hit in ledger.recent_hits(20))
    finally:
        ledger.close()
