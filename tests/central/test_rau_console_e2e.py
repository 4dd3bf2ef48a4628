"""A raise from the RAU's console reaches the site and holds the truck: a real mosquitto,
the hub (in this process, as tests/sync runs it), a real agent linked to both, and the
console on the hub's ledger, over HTTP and in a real headless Chromium.

The truck is the console rig's plain green truck, released in lane L1 and still in it;
the analyst raises it to red; the hub publishes the site's `raise_channel` command; the
site's core stops the truck (barrier permission withdrawn, held at the red sign)."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from playwright.sync_api import expect
from starlette.testclient import TestClient
from testkit import console_rig as rig
from testkit.browser import chromium_page
from testkit.waiting import wait_for

from edge_agent.central.broker import Endpoint
from edge_agent.central.console.app import create_app, server_for
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.hub import Hub
from edge_agent.central.ledger import Ledger
from edge_agent.config import SyncConfig

PASSWORD = "correct horse battery"


@pytest.fixture
def linked(broker, tmp_path):
    """(the hub's ledger path, the agent) once the site is online at the hub with a truck
    released in L1."""
    from gpiozero.pins.mock import MockFactory

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
        snap = rig.drive_in(agent, "L1", rig.plain_record(), "BG555XY", 18000.0)
        assert snap["channel"] == "green" and snap["phase"] == "released"
        yield db, agent, hub
    finally:
        agent.stop()
        hub.stop()


def held_red(agent) -> bool:
    lane = agent.core.snapshot()["L1"]
    return lane["phase"] == "held" and lane["channel"] == "red"


def console_settings(tmp_path, db) -> RauConsoleSettings:
    return RauConsoleSettings(ledger=str(db), users_db=tmp_path / "rau_console.db", refresh_s=1.0)


def test_an_analysts_raise_reaches_the_site_and_holds_the_truck(linked, tmp_path):
    db, agent, hub = linked
    app = create_app(console_settings(tmp_path, db))
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    try:
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 303
            wait_for(lambda: 'L1: released' in client.get("/sites/live").text, 30, what="the lane at the hub")
            csrf = rig.csrf_of(client.get("/sites/xk-test").text)
            r = client.post("/sites/xk-test/raise", data={"csrf": csrf, "plate": "BG 555-XY", "channel": "red",
                                                           "reason": "tip-off from the border police"})
            assert r.status_code == 303, r.text
            wait_for(lambda: held_red(agent), 30, what="the site's core to hold the truck")
            assert "waiting for the hub" not in client.get("/sites/xk-test").text
    finally:
        app.state.console.close()
    assert hub.counters["commands_published"] == 1
    ledger = Ledger(db)
    try:
        [sent] = ledger.commands(site="xk-test")
        assert sent["published_at"] and sent["by"] == "ana"
        # The site recorded the raise and told the hub (its rau_raise event names the command).
        wait_for(lambda: ledger.count("xk-test", "rau_raise") == 1, 30, what="the site's rau_raise at the hub")
    finally:
        ledger.close()


@pytest.fixture
def page():
    with chromium_page(30_000) as page:
        yield page


def test_in_a_browser_an_analyst_sees_the_site_and_raises_the_truck(linked, tmp_path, page):
    db, agent, _ = linked
    app = create_app(console_settings(tmp_path, db))
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    server = server_for(app)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_for(lambda: server.started, 15, what="the console to serve")
        page.goto(url + "/")
        assert "/login" in page.url
        page.fill("#username", "ana")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(url + "/")
        row = page.locator('tr[data-site="xk-test"]')
        expect(row.locator(".link")).to_have_text("online")
        expect(row.locator('.phase[data-lane="L1"]')).to_have_text("L1: released")  # renewed by the poll
        row.locator("a").click()
        page.wait_for_url(url + "/sites/xk-test")
        page.fill("#plate", "BG555XY")
        page.select_option("#channel", "red")
        page.fill("#reason", "tip-off from the border police")
        page.click("#raise-submit")
        page.wait_for_url(url + "/sites/xk-test")
        expect(page.locator("#raises tbody tr").first).to_contain_text("tip-off from the border police")
        wait_for(lambda: held_red(agent), 30, what="the site's core to hold the truck")
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.console.close()
