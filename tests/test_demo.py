"""End to end: the demo scenario through the real agent, simulators and all.

The expected outcome of each truck comes from the scenario's planting, not from the
rules engine, so a regression anywhere on the path (serial driver, stability, camera
push, plate association, rules, lane, gate) shows up as a wrong truck here.
"""

import json

import pytest
from testkit.processes import reaped

from edge_agent.demo import print_summary, run_scenario

RELEASED = ["sign:exit", "open", "close", "sign:none"]
HELD_THEN_RELEASED = {
    "yellow": ["sign:documents", "sign:exit", "open", "close", "sign:none"],
    "red": ["sign:inspection", "sign:exit", "open", "close", "sign:none"],
    "orange": ["sign:scanner", "sign:exit", "open", "close", "sign:none"],
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo")


REPORTS: list[str] = []


@pytest.fixture(scope="module")
def outcomes(demo_dir):
    # With the RAU beside the agent (mosquitto is installed by the test command).
    return run_scenario(trucks=20, time_factor=0.0, seed=7, data_dir=demo_dir, online=True,
                        before_stop=lambda rig, outcomes: REPORTS.append(rig.rau_report()))


def test_every_truck_gets_the_expected_channel_hits_and_gate_commands(outcomes):
    assert len(outcomes) == 20
    for o in outcomes:
        plan = o.plan
        assert o.error == "", f"truck {plan.number}: {o.error}"
        assert set(o.hits) == set(plan.expected_hits), f"truck {plan.number} ({plan.plant})"
        if plan.expected_channel:
            assert o.channel == plan.expected_channel, f"truck {plan.number} ({plan.plant})"
        elif o.random_selected:
            assert o.channel == "yellow" and not o.hits
        else:
            assert o.channel == "green", f"truck {plan.number} ({plan.plant})"
        expected_gate = HELD_THEN_RELEASED.get(o.channel, RELEASED)
        assert o.gate_actions == expected_gate, f"truck {plan.number} ({plan.plant}, {o.channel})"
        if plan.record is not None:
            assert o.reference == plan.record.reference, f"truck {plan.number} tied to the wrong record"


def test_the_planted_cases_are_all_in_the_scenario(outcomes):
    plants = {o.plan.plant for o in outcomes}
    assert {"overweight", "watch_consignee", "no_record", "ocr_errors", "tobacco", "empty_loaded"} <= plants


def test_the_summary_reports_every_truck_as_expected(outcomes, capsys):
    assert print_summary(outcomes, 1.0, print) is True
    out = capsys.readouterr().out
    assert "20/20 trucks handled as the scenario expects" in out


def test_every_crossing_is_sealed_into_the_evidence_chain_with_snapshots_plates_and_scale_bytes(outcomes, demo_dir):
    from edge_agent.evidence.manifest import manifest_paths
    from edge_agent.evidence.verify import verify_evidence

    root = demo_dir / "evidence"
    assert verify_evidence(root) == []
    manifests = [json.loads(p.read_bytes()) for p in manifest_paths(root)]
    sealed = {m["crossing_id"]: {e["kind"] for e in m["files"]} for m in manifests}
    for o in outcomes:
        assert {"anpr", "scale", "snapshot"} <= sealed.get(o.crossing_id, set()), f"truck {o.plan.number}"
        if o.hits:
            assert "clip" in sealed[o.crossing_id], f"truck {o.plan.number} had hits but no clip"


def test_the_demo_console_shows_the_crossings_and_stays_up_until_ctrl_c(tmp_path):
    import re
    import signal
    import subprocess
    import sys

    import httpx2 as httpx

    from edge_agent.demo import DEMO_PASSWORD

    stderr = open(tmp_path / "demo.err", "wb")  # noqa: SIM115 - the child writes it until it ends
    child = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "demo", "--speed", "max", "--trucks", "4", "--quiet",
         "--console", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=stderr, text=True,
        # As a background job of a script starts it: SIGINT ignored. Ctrl-C must still end it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    with reaped(child, stderr_path=tmp_path / "demo.err"):
        lines = []
        for line in child.stdout:
            lines.append(line)
            found = re.search(r"the console stays up at (http://\S+), the site's figures at (http://\S+)", line)
            if found:
                break
        assert found, "".join(lines)
        assert "4/4 trucks handled as the scenario expects" in "".join(lines)
        with httpx.Client(base_url=found.group(1), follow_redirects=False) as client:
            assert client.post("/login", data={"username": "officer", "password": DEMO_PASSWORD,
                                               "next": "/"}).status_code == 303
            page = client.get("/stats")
            assert page.status_code == 200
            assert client.get("/metrics").status_code == 404  # the figures are on the agent's own port
            metrics = httpx.get(found.group(2)).text
            decided = sum(float(m) for m in re.findall(r'^edge_agent_decisions_total\{[^}]*\} (\S+)', metrics, re.M))
            assert decided == 4, metrics
        child.send_signal(signal.SIGINT)
        assert child.wait(30) == 0


def test_every_event_reaches_the_central_hub_once_and_the_outbox_empties(outcomes, demo_dir):
    from edge_agent.central.ledger import Ledger

    assert REPORTS and REPORTS[0].endswith("0 left in the outbox unacknowledged"), REPORTS
    ledger = Ledger(demo_dir / "central.db")
    try:
        assert ledger.count(site="xk-merdare", stream="crossing") == len(outcomes)
        assert ledger.count(site="xk-merdare", stream="hit") == sum(len(o.hits) for o in outcomes)
        assert ledger.count(site="xk-merdare", stream="indicators_applied") == 1
    finally:
        ledger.close()


def test_offline_the_lanes_decide_alone_and_the_events_wait_in_the_outbox(tmp_path):
    from edge_agent.store import Store

    outcomes = run_scenario(trucks=3, time_factor=0.0, seed=5, data_dir=tmp_path, online=False)
    assert all(o.error == "" and o.channel for o in outcomes)
    reader = Store.reader(tmp_path / "agent.db")
    try:
        streams = [r[0] for r in reader.db.execute("SELECT stream FROM outbox")]
    finally:
        reader.close()
    assert streams.count("crossing") == 3
    assert not (tmp_path / "central.db").exists()


def test_the_demo_rau_console_publishes_an_indicator_two_people_sign_to_the_demo_lanes(tmp_path):
    """`demo --rau-console`: the analyst drafts and submits, the senior approves, and the
    demo's agent applies the set (its root wants both people's keys)."""
    import re

    import httpx2 as httpx
    from testkit.waiting import wait_for

    from edge_agent.demo import DEMO_PASSWORD

    applied: list[int] = []

    def use_the_console(rig, outcomes) -> None:
        before = rig.agent.core.counters["bundles_applied"]
        with httpx.Client(base_url=rig.rau.console_url, follow_redirects=False) as client:
            def log_in(username: str) -> str:
                client.cookies.clear()
                assert client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                                   "next": "/"}).status_code == 303
                return re.search(r'name="csrf" value="([^"]+)"', client.get("/indicators").text).group(1)

            csrf = log_in("analyst")
            draft = client.post("/indicators/new", data={"csrf": csrf, "level": "central", "scope": "central"})
            path = draft.headers["location"]
            assert "C-ARMS-93" in client.get(path).text  # the demo's own set, released through the hub, is the base
            r = client.post(path + "/indicator", data={
                "csrf": csrf, "id": "C-APPLES-0808", "field": "items.hs_code", "op": "prefix", "value": "0808",
                "channel": "yellow", "priority": "1", "title": "Apples"})
            assert r.status_code == 303, r.text
            assert client.post(path + "/submit", data={"csrf": csrf}).status_code == 303
            csrf = log_in("senior")
            assert client.post(path + "/approve", data={"csrf": csrf}).status_code == 303
        wait_for(lambda: rig.agent.core.counters["bundles_applied"] > before, 30, what="the demo's agent to apply it")
        applied.append(rig.agent.core.counters["bundles_applied"])

    run_scenario(trucks=1, time_factor=0.0, seed=3, data_dir=tmp_path, online=True, rau_console_port=0,
                 before_stop=use_the_console)
    assert applied


def test_a_raise_from_the_demo_rau_console_holds_the_next_demo_truck(tmp_path):
    """An analyst raises a truck not yet at the crossing; the demo's agent records the
    raise (its rau_raise reaches the hub) and gives the truck that channel on arrival."""
    import httpx2 as httpx
    from testkit.console_rig import csrf_of
    from testkit.waiting import wait_for

    from edge_agent.central.ledger import Ledger
    from edge_agent.demo import DEMO_PASSWORD, SITE_ID
    from edge_agent.simulators.scenario import build_scenario

    clean = next(p for p in build_scenario(8, seed=11) if p.expected_channel is None and not p.expected_hits)
    raised: list = []

    def raise_then_drive(rig, outcomes) -> None:
        with httpx.Client(base_url=rig.rau.console_url, follow_redirects=False) as client:
            assert client.post("/login", data={"username": "analyst", "password": DEMO_PASSWORD,
                                               "next": "/"}).status_code == 303
            csrf = csrf_of(client.get(f"/sites/{SITE_ID}").text)
            r = client.post(f"/sites/{SITE_ID}/raise", data={
                "csrf": csrf, "plate": clean.tractor_plate, "channel": "red",
                "reason": "tip-off from the border police"})
            assert r.status_code == 303, r.text
        ledger = Ledger(tmp_path / "central.db")
        try:
            wait_for(lambda: ledger.count(SITE_ID, "rau_raise") == 1, 30, what="the site's rau_raise at the hub")
        finally:
            ledger.close()
        raised.extend(rig.drive([clean], None))

    run_scenario(trucks=1, time_factor=0.0, seed=3, data_dir=tmp_path, online=True, rau_console_port=0,
                 before_stop=raise_then_drive)
    [outcome] = raised
    assert not outcome.error, outcome.error
    assert outcome.channel == "red"
