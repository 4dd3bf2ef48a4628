"""The core loop on the real store, rules engine and plate index, without threads:
`drain()` handles what is queued exactly as the loop's thread would. The `core`
fixture of tests/core builds one; these are its parts and the trucks it drives."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import parse_config
from edge_agent.core import Core
from edge_agent.core.rules_in_force import RulesAssessor
from edge_agent.local_rules import load_indicator_set
from edge_agent.models import Party, PlateRead, PreArrival, VehicleDetected, WeightStable
from edge_agent.outputs import OutputBus
from edge_agent.plates.association import PlateIndex
from edge_agent.store import Store
from testkit.outputs import Recorder

ROOT = Path(__file__).resolve().parents[2]
SITE = """
[site]
id = "bcp-test"
region = "north"
[[lanes]]
id = "L1"
[lanes.timeouts]
trailer_s = 0.5
[[lanes]]
id = "L2"
[policy]
random_share_pct = 0
"""


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_core(db: Path) -> Core:
    """A core on the demo indicator set whose commands a Recorder keeps (`core.recorder`);
    start `core.outputs` before use and stop it after."""
    config = parse_config(SITE)
    rules = load_indicator_set(ROOT / "firmware_config" / "indicators" / "demo.json")
    bus = OutputBus()
    recorder = Recorder()
    bus.add(recorder)
    core = Core(config, Store.open(db), RulesAssessor(config, rules), PlateIndex(), bus, clock=Clock())
    core.recorder = recorder  # type: ignore[attr-defined]
    return core


def truck(reference="XK26EX100", gross_kg=24000.0, consignee="Prizren Food LLC", trailer="", expires_at=None,
          plate="01 123-AB"):
    return PreArrival(reference=reference, tractor_plate=plate, trailer_plate=trailer, gross_kg=gross_kg,
                      expires_at=expires_at,
                      consignor=Party(name="Tirana Mobilia SH.A.", country="AL"),
                      consignee=Party(name=consignee, country="XK"),
                      items=[{"hs_code": "940360", "origin": "AL"}])


def cross(core, plate="01123AB", weight=24100.0, lane="L1"):
    for event in (VehicleDetected(lane=lane), PlateRead(lane=lane, text=plate, raw=plate, confidence=0.93),
                  WeightStable(lane=lane, gross_kg=weight)):
        core.post(event)
    core.drain()
    return core.lanes[lane]
