"""Console benchmark: the cost of the lane page's live stream, and the console's memory.

    python benchmarks/console_live.py            # 2,000 ticks per variant, memory in subprocesses
    python benchmarks/console_live.py --quick    # a few seconds: 200 ticks

Each open lane page re-renders its status panel once per `live_interval_s` (server-sent
events). Per tick the console gathers the lane (core state, gate state, agent health,
a few read-only queries) and renders the Jinja2 panel. The baseline, run side by side on
the same held truck, is the cheapest live feed possible: `json.dumps(core.snapshot())`.
Memory: resident set (VmRSS) of a process that imports the agent, against one that also imports
the console stack (Starlette, Jinja2, uvicorn, argon2) and builds the app: the price a
site pays for enabling the console (RAM budget: two lanes within 150 MB on a Pi).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.agent import Agent  # noqa: E402
from edge_agent.config import (  # noqa: E402
    AgentConfig,
    GateConfig,
    LaneConfig,
    MetricsConfig,
    PolicyConfig,
    RulesConfig,
    SiteConfig,
)
from edge_agent.models import (  # noqa: E402
    Item,
    Party,
    PlateRead,
    PlateRole,
    PreArrival,
    PreArrivalReceived,
    VehicleDetected,
    WeightStable,
)

INDICATORS = ROOT / "firmware_config" / "indicators" / "demo.json"


class _NoDevices(Agent):
    # The benchmark is the truck's devices: it posts their events itself.
    def _start_devices(self) -> None:
        pass


def _agent(data_dir: Path) -> Agent:
    from gpiozero.pins.mock import MockFactory

    from edge_agent.simulators.barrier import simulated_barrier

    config = AgentConfig(
        site=SiteConfig(id="bench", region="bench", data_dir=data_dir),
        lanes=[LaneConfig(id="L1", gate=GateConfig(pin_factory="mock"))],
        policy=PolicyConfig(random_secret="console-bench-secret-1"),
        rules=RulesConfig(indicator_files=[INDICATORS]),
        metrics=MetricsConfig(port=0),
    )
    agent = _NoDevices(config, pin_factory=MockFactory(), data_dir=data_dir, gate_equipment=simulated_barrier(0.01))
    agent.start()
    record = PreArrival(reference="EX-1", tractor_plate="KS123AB", gross_kg=24000,
                        consignor=Party(name="Tabak Export DOO"), consignee=Party(name="Dukat"),
                        items=[Item(hs_code="240220", gross_kg=24000)])
    for event in (PreArrivalReceived(record=record), VehicleDetected(lane="L1"),
                  PlateRead(lane="L1", text="KS123AB", confidence=0.9, role=PlateRole.TRACTOR),
                  WeightStable(lane="L1", gross_kg=24100)):
        agent.post(event)
    deadline = time.monotonic() + 20
    while not agent.core.snapshot()["L1"]["decided"]:
        if time.monotonic() > deadline:
            raise SystemExit("the truck was not decided")
        time.sleep(0.01)
    return agent


def _per_tick_us(fn, ticks: int) -> float:
    fn()  # warm: templates compiled, reader opened
    start = time.perf_counter()
    for _ in range(ticks):
        fn()
    return (time.perf_counter() - start) / ticks * 1e6


_RSS_PROBE = """
import sys, tempfile
sys.path.insert(0, {root!r})
import edge_agent.agent, edge_agent.core, edge_agent.store
if {console}:
    from types import SimpleNamespace
    from edge_agent.config import ConsoleConfig
    from edge_agent.console.app import create_app
    import uvicorn, argon2
    site = SimpleNamespace(id="x", name="", data_dir=tempfile.mkdtemp())
    fake = SimpleNamespace(config=SimpleNamespace(site=site), data_dir=site.data_dir,
                           core=SimpleNamespace(post=lambda event: None))
    create_app(fake, ConsoleConfig())
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS")][0])
"""


def _rss_kb(console: bool) -> int:
    out = subprocess.run([sys.executable, "-c", _RSS_PROBE.format(root=str(ROOT), console=console)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    args = parser.parse_args()
    ticks = 200 if args.quick else 2000

    from edge_agent.config import ConsoleConfig
    from edge_agent.console.app import Console

    with tempfile.TemporaryDirectory() as tmp:
        agent = _agent(Path(tmp))
        try:
            console = Console(agent, ConsoleConfig())
            template = console.templates.get_template("_lane_status.html")
            from edge_agent.console.readouts import health_view

            def panel() -> str:
                return template.render(view=console.lane_view("L1"), health=health_view(agent, console.backlog()))

            baseline = _per_tick_us(lambda: json.dumps(agent.core.snapshot()), ticks)
            rendered = _per_tick_us(panel, ticks)
            size = len(panel().encode())
            console.close()
        finally:
            agent.stop()
    base_rss, console_rss = _rss_kb(False), _rss_kb(True)
    print(f"live tick, {ticks} ticks, one held red truck with a hit:")
    print(f"  baseline json.dumps(core.snapshot())   {baseline:9.1f} us/tick")
    print(f"  console lane panel (gather + render)   {rendered:9.1f} us/tick   ratio {rendered / baseline:6.1f}x,"
          f" {size:,} bytes/event")
    print(f"  at 1 tick/s: {rendered / 1e4:.3f} % of one core per open lane page")
    print("memory (resident set of a fresh process after the imports):")
    print(f"  agent modules only                      {base_rss / 1024:7.1f} MB")
    print(f"  agent + console stack and app           {console_rss / 1024:7.1f} MB   "
          f"(+{(console_rss - base_rss) / 1024:.1f} MB, ratio {console_rss / base_rss:.2f})")


if __name__ == "__main__":
    main()
