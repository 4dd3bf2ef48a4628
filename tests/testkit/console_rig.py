"""The console tests' rig: a real agent (store, core, rules, gates on gpiozero's MockFactory).

The lanes have no weighbridge or cameras configured: the tests post the events those
devices would post (`agent.post`, the same door), so each test controls exactly which
truck is in which lane. Everything the console touches is the production code.
"""

from __future__ import annotations

import re
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.config import (
    AgentConfig,
    ConsoleConfig,
    GateConfig,
    LaneConfig,
    MetricsConfig,
    PolicyConfig,
    RulesConfig,
    SiteConfig,
)
from edge_agent.models import (
    Item,
    Party,
    PlateRead,
    PlateRole,
    PreArrival,
    PreArrivalReceived,
    VehicleDetected,
    WeightStable,
)
from edge_agent.simulators.barrier import simulated_barrier
from testkit import waiting

ROOT = Path(__file__).resolve().parents[2]
DEMO_INDICATORS = ROOT / "firmware_config" / "indicators" / "demo.json"
PASSWORD = "correct horse battery"
USERS = {
    "olga": "officer",
    "oscar": "officer",
    "hana": "head_of_office",
    "lara": "local_risk_analyst",
    "tomo": "technician",
    "vera": "viewer",
}
SECOND_LANE_PINS = {
    "barrier_open_pin": "GPIO16", "barrier_close_pin": "GPIO20", "light_red_pin": "GPIO21",
    "light_green_pin": "GPIO26", "loop_arrival_pin": "GPIO12", "loop_on_scale_pin": "GPIO7",
    "loop_under_boom_pin": "GPIO8", "loop_exit_pin": "GPIO11", "open_limit_pin": "GPIO9", "closed_limit_pin": "GPIO10",
}


class LaneBench(Agent):
    """The agent without device readers: the tests are the devices (the barriers are the
    simulators', on mock pins)."""

    def __init__(self, config: AgentConfig, **kwargs) -> None:
        kwargs.setdefault("gate_equipment", simulated_barrier(0.05))
        super().__init__(config, **kwargs)

    def _start_devices(self) -> None:
        pass


def site_config(data_dir: Path, console: ConsoleConfig | None = None) -> AgentConfig:
    lanes = [
        LaneConfig(id="L1", gate=GateConfig(pin_factory="mock")),
        LaneConfig(id="L2", gate=GateConfig(pin_factory="mock", **SECOND_LANE_PINS)),
    ]
    return AgentConfig(
        site=SiteConfig(id="xk-test", region="xk-rs", name="Test BCP", data_dir=data_dir),
        lanes=lanes,
        policy=PolicyConfig(random_secret="console-test-secret-0123", random_share_pct=0.0),
        rules=RulesConfig(indicator_files=[DEMO_INDICATORS]),
        # The tests serve the console themselves (create_app or start_console): enabled, the
        # agent would serve a second one on the same audit log.
        console=console or ConsoleConfig(enabled=False, port=0, live_interval_s=0.1),
        metrics=MetricsConfig(port=0),
    )


def login(client, username: str) -> str:
    """Log in and return the session's CSRF token (read from a page, as a browser would)."""
    client.cookies.clear()
    r = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/lanes/L1").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def tobacco_record(reference: str = "EX-24-0001", plate: str = "KS123AB", gross_kg: float = 24000.0) -> PreArrival:
    """A record the demo set sends to red (L-TOBACCO-24, HS 2402)."""
    return PreArrival(
        reference=reference, tractor_plate=plate, gross_kg=gross_kg,
        consignor=Party(name="Tabak Export DOO", country="RS"), consignee=Party(name="Dukat SH.P.K.", country="XK"),
        items=[Item(hs_code="240220", origin="RS", gross_kg=gross_kg, value_eur=90000)],
        country_of_dispatch="RS", office_of_exit="RS-MERDARE", office_of_entry="XK-MERDARE",
    )


def plain_record(reference: str = "EX-24-0002", plate: str = "BG555XY", gross_kg: float = 18000.0) -> PreArrival:
    return PreArrival(
        reference=reference, tractor_plate=plate, gross_kg=gross_kg,
        consignor=Party(name="Fruit Farm DOO", country="RS"), consignee=Party(name="Market SH.P.K.", country="XK"),
        items=[Item(hs_code="080810", origin="RS", gross_kg=gross_kg, value_eur=12000)],
    )


def drive_in(agent, lane: str, record: PreArrival | None, plate: str, measured_kg: float, *,
             timeout_s: float = 20.0) -> dict:
    """Post what the lane's devices would for one truck; wait for the decision."""
    if record is not None:
        agent.post(PreArrivalReceived(record=record, source="seed-feed"))
    agent.post(VehicleDetected(lane=lane, source="loop"))
    agent.post(PlateRead(lane=lane, text=plate, raw=plate, confidence=0.93, role=PlateRole.TRACTOR,
                         camera=f"{lane}-front"))
    agent.post(WeightStable(lane=lane, gross_kg=measured_kg, source="scale"))
    return wait_for(lambda: (s := agent.core.snapshot()[lane])["decided"] and s, f"decision in {lane}", timeout_s)


def wait_for(condition, what: str, timeout_s: float = 20.0):
    return waiting.wait_for(condition, timeout_s, 0.02, what)
