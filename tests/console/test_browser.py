"""End to end in a real headless Chromium: log in, watch a truck arrive live, record a
control act, and find it in the outbox for the RAU.

The console is served by uvicorn on a free loopback port by `start_console`, exactly as
the agent serves it; the truck comes in through the agent's event door, as its devices
post it. Debian's chromium package provides the browser (`apt-get install chromium`).
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from testkit import console_rig as rig
from testkit.browser import chromium_page


@pytest.fixture
def served(agent):
    from edge_agent.console import start_console

    handle = start_console(agent, agent.config.console)
    handle.console.accounts.add_user("olga", "officer", rig.PASSWORD, "Olga Officer")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def page():
    with chromium_page(20_000) as page:
        yield page


def _outbox(agent, stream: str) -> list[dict]:
    from edge_agent.store import Store

    reader = Store.reader(agent.data_dir / "agent.db")
    try:
        return [json.loads(r["payload"]) for r in reader.db.query("SELECT payload FROM outbox WHERE stream = ?",
                                                                  [stream])]
    finally:
        reader.close()


def test_an_officer_watches_a_truck_arrive_and_records_a_control_act(served, agent, page):
    page.goto(served.url + "/lanes/L1")
    assert "/login" in page.url
    page.fill("#username", "olga")
    page.fill("#password", rig.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/lanes/L1")
    assert page.text_content("#whoami").startswith("olga")
    assert page.text_content("#phase") == "idle"

    # The truck arrives while the page is open: the live stream brings it in, no reload.
    snap = rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
    expect(page.locator("#channel")).to_have_text("red")
    assert page.text_content("[data-plate=tractor]") == "KS123AB"
    assert page.text_content("#phase") == "held"
    assert page.text_content("#reference") == "EX-24-0001"
    assert "L-TOBACCO-24" in page.text_content("#live")
    assert page.text_content("#barrier") == "closed"
    assert int(page.evaluate("document.body.dataset.liveUpdates")) >= 2

    form = page.locator("#form-control-act")
    assert form.locator("select[name=crossing_id]").input_value() == snap["crossing"]
    form.locator("select[name=control_type]").select_option("physical")
    form.locator("select[name=result]").select_option("positive")
    # a seizure without its amount is refused next to the field
    form.locator("textarea[name=findings]").fill("60 cartons of cigarettes under the pallets")
    form.locator("input[name=seizure]").check()
    form.locator("input[name=seized_goods]").fill("cigarettes, 60 cartons")
    form.locator("input[name=legal_basis]").fill("Customs Code art. 273")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-error='control_act.evaded_duties_eur']")
    assert _outbox(agent, "control_act") == []

    form = page.locator("#form-control-act")
    form.locator("input[name=evaded_duties_eur]").fill("3200")
    form.locator("select[name=then]").select_option("release")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#flash")

    sent = rig.wait_for(lambda: _outbox(agent, "control_act"), "the control act in the outbox")
    assert len(sent) == 1
    act = sent[0]
    assert act["crossing_id"] == snap["crossing"] and act["user"] == "olga"
    assert act["result"] == "positive" and act["classification"] == "offence" and act["evaded_duties_eur"] == 3200
    # the release follows on the live page
    expect(page.locator("#barrier")).to_have_text("open")
    page.reload()
    assert "offence" in page.text_content("#acts")


def test_the_content_security_policy_is_enforced_and_the_live_page_works_under_it(served, agent, page):
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(served.url + "/login?next=/lanes/L1")
    page.fill("#username", "olga")
    page.fill("#password", rig.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/lanes/L1")
    rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
    expect(page.locator("#channel")).to_have_text("red")  # the script and its stream ran
    assert violations == [], "the console's own script, styles, images and stream are all allowed"
    # An injected inline script (what a stored XSS would add) is blocked: the browser
    # reports the violation, and the script's effect never happens.
    blocked = page.evaluate("""() => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), {once: true});
        const s = document.createElement("script");
        s.textContent = "window.injected = 1";
        document.body.append(s);
        if (window.injected) resolve("ran");  // an inline script runs as it is appended
    })""")
    assert blocked.startswith("script-src")
    assert page.evaluate("window.injected") is None


@pytest.fixture
def demo(tmp_path):
    """The demo's rig: the real agent on simulated weighbridges, cameras and loops."""
    from edge_agent.config import ConsoleConfig
    from edge_agent.console import start_console
    from edge_agent.demo import DemoRig

    # 0.5: a held truck waits 4 s before the rig completes its control, and the rig leaves the
    # control act to the officer on the page (recording its own only after a minute without).
    demo_rig = DemoRig(tmp_path, time_factor=0.5, seed=7, officer_wait_s=60)
    demo_rig.start()
    handle = None
    try:
        handle = start_console(demo_rig.agent, ConsoleConfig(enabled=True, port=0, live_interval_s=0.2))
        handle.console.accounts.add_user("olga", "officer", rig.PASSWORD)
        yield demo_rig, handle
    finally:
        if handle is not None:
            handle.stop()
        demo_rig.stop()


def test_on_the_demo_rig_an_officer_watches_a_truck_arrive_and_records_a_control_act(demo, page):
    import threading

    from edge_agent.models import PreArrivalReceived
    from edge_agent.simulators.scenario import build_scenario

    demo_rig, handle = demo
    plan = next(p for p in build_scenario(8, 7) if p.lane == "L1" and p.expected_channel == "red")
    demo_rig.agent.post(PreArrivalReceived(record=plan.record, source="seed-feed"))

    page.goto(handle.url + "/login?next=/lanes/L1")
    page.fill("#username", "olga")
    page.fill("#password", rig.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/lanes/L1")

    outcomes: list = []
    driver = threading.Thread(target=lambda: outcomes.extend(demo_rig.drive([plan], None)), daemon=True)
    driver.start()
    try:
        # weighbridge frames over TCP, the camera's HTTP push, the loops on mock pins: live on the page
        expect(page.locator("#channel")).to_have_text("red", timeout=30_000)
        assert page.text_content("[data-plate=tractor]") == plan.tractor_read
        assert page.text_content("#reference") == plan.record.reference
        crossing = page.get_attribute("#live [data-crossing]", "data-crossing")
        form = page.locator("#form-control-act")
        assert form.locator("select[name=crossing_id]").input_value() == crossing
        form.locator("select[name=control_type]").select_option("physical")
        form.locator("select[name=result]").select_option("positive")
        form.locator("textarea[name=findings]").fill("load heavier than declared: undeclared steel coils")
        form.locator("input[name=penalties]").fill("fine 1,500 EUR")
        form.locator("input[name=legal_basis]").fill("Customs Code art. 272")
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#flash")
    finally:
        driver.join(60)
    assert not driver.is_alive()

    sent = rig.wait_for(lambda: _outbox(demo_rig.agent, "control_act"), "the control act in the outbox")
    assert [(a["crossing_id"], a["result"], a["user"]) for a in sent] == [(crossing, "positive", "olga")]
    assert sent[0]["legal_basis"] == "Customs Code art. 272" and sent[0]["classification"] == "none"
