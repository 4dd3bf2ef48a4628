"""Lane decision latency: from the last input a decision needs to the gate command.

For each of N simulated trucks (default 10,000) the core handles an arrival, a plate
read and then the stable weighing that completes what the rules need; the clock runs
from handing that weighing to the core until the barrier command reaches the output
bus. Beside it, in the same process and on the same kind of database, the baseline
does the same database writes alone (the event, the assessment, the crossing row, the
commands, in one durable transaction) with no decision logic, so the ratio shows what
the state machine, plate association and rules add on top of the durable write.

It also counts the bytes each truck makes the process write (`wchar` in /proc/self/io:
WAL frames, checkpoints and all), the figure behind an SD card's wear; the baseline's
is for its one decision transaction.

    python benchmarks/lane_latency.py [--trucks 10000] [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.commands import OpenBarrier, ShowSign  # noqa: E402
from edge_agent.config import parse_config  # noqa: E402
from edge_agent.core import Core  # noqa: E402
from edge_agent.core.rules_in_force import RulesAssessor  # noqa: E402
from edge_agent.local_rules import load_indicator_set  # noqa: E402
from edge_agent.models import (  # noqa: E402
    Assessment,
    PlateRead,
    PreArrivalReceived,
    Tick,
    VehicleDetected,
    VehicleLeft,
    WeightStable,
)
from edge_agent.outputs import OutputBus  # noqa: E402
from edge_agent.plates.association import PlateIndex  # noqa: E402
from edge_agent.simulators.scenario import build_scenario  # noqa: E402
from edge_agent.store import Store  # noqa: E402

SITE = """
[site]
id = "bench"
region = "bench"
[[lanes]]
id = "L1"
[lanes.timeouts]
trailer_s = 0.001
[policy]
random_secret = "benchmark-secret"
"""


class Stopwatch:
    """An output that notes when the first gate command of a decision is dispatched."""

    name = "stopwatch"

    def __init__(self) -> None:
        self.at: float | None = None

    def accepts(self, command: object) -> bool:
        if self.at is None and isinstance(command, (OpenBarrier, ShowSign)):
            self.at = time.perf_counter()
        return False

    def execute(self, command: object) -> None:  # never called: accepts() says no
        pass


def bytes_written() -> int:
    """What this process has handed to write() so far; 0 where /proc/self/io is absent."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def measure_core(trucks: int, workdir: Path, waited: list[int], written: dict[str, float]) -> list[float]:
    config = parse_config(SITE)
    store = Store.open(workdir / "core.db")
    rules = load_indicator_set(ROOT / "firmware_config" / "indicators" / "demo.json")
    watch = Stopwatch()
    bus = OutputBus()
    bus.add(watch)
    clock = [0.0]
    core = Core(config, store, RulesAssessor(config, rules), PlateIndex(), bus,
                clock=lambda: clock[0])
    plans = build_scenario(trucks, seed=11, lanes=("L1",))
    for plan in plans:
        if plan.record:
            core.handle(PreArrivalReceived(record=plan.record))
    latencies = []
    before = bytes_written()
    for plan in plans:
        clock[0] += 10
        core.handle(VehicleDetected(lane="L1"))
        core.handle(PlateRead(lane="L1", text=plan.tractor_read, confidence=0.9))
        if plan.trailer_read:
            core.handle(PlateRead(lane="L1", text=plan.trailer_read, confidence=0.9))
        watch.at = None
        weighing = WeightStable(lane="L1", gross_kg=plan.measured_kg)
        start = time.perf_counter()
        core.handle(weighing)
        if watch.at is None:
            # The lane holds the decision for the trailer-read window (a read matched a
            # record that expects a trailer): that wait is policy, not processing time.
            waited.append(plan.number)
            clock[0] += config.lane("L1").timeouts.trailer_s + 1
            core.handle(Tick())
            if watch.at is None:
                raise SystemExit(f"truck {plan.number}: no gate command after the weighing")
            core.handle(VehicleLeft(lane="L1", direction="reverse"))
            continue
        latencies.append(watch.at - start)
        core.handle(VehicleLeft(lane="L1", direction="forward" if core.lanes["L1"].phase == "released" else "reverse"))
    written["core"] = (bytes_written() - before) / len(plans)
    store.close()
    return latencies


def measure_writes_alone(trucks: int, workdir: Path, written: dict[str, float]) -> list[float]:
    store = Store.open(workdir / "baseline.db")
    latencies = []
    before = bytes_written()
    for n in range(trucks):
        weighing = WeightStable(lane="L1", gross_kg=24000 + n)
        start = time.perf_counter()
        with store.transaction():
            store.record_event(weighing)
            assessment = Assessment(crossing_id=weighing.id, lane="L1", channel="green")
            store.record_assessment(assessment)
            store.save_crossing({"id": weighing.id, "lane": "L1", "phase": "released", "channel": "green",
                                 "started_at": "", "ended_at": "", "outcome": ""})
            for command in (ShowSign(lane="L1", crossing_id=weighing.id, sign="exit"),
                            OpenBarrier(lane="L1", crossing_id=weighing.id)):
                store.record_command(command, weighing.at)
        latencies.append(time.perf_counter() - start)
    written["baseline"] = (bytes_written() - before) / trucks
    store.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trucks", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="500 trucks, for a smoke run")
    args = parser.parse_args()
    trucks = 500 if args.quick else args.trucks
    random.seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        waited: list[int] = []
        written: dict[str, float] = {}
        core = measure_core(trucks, work, waited, written)
        base = measure_writes_alone(trucks, work, written)
    ms = lambda s: s * 1000  # noqa: E731
    print(f"lane decision latency over {trucks} trucks (ms)")
    print(f"{'':<28}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, values in (("core: decision + writes", core), ("baseline: writes alone", base)):
        print(f"{name:<28}{ms(percentile(values, 50)):>8.3f}{ms(percentile(values, 99)):>8.3f}{ms(max(values)):>8.3f}")
    print(f"ratio core/baseline: p50 {statistics.median(core) / statistics.median(base):.2f}x, "
          f"p99 {percentile(core, 99) / percentile(base, 99):.2f}x")
    print(f"target p99 <= 5 ms: {'met' if ms(percentile(core, 99)) <= 5 else 'NOT met'}")
    print(f"written per truck: {written['core'] / 1024:.1f} KiB (arrival to exit, every event and row);"
          f" {written['baseline'] / 1024:.1f} KiB for the decision transaction alone")
    print(f"{len(waited)} truck(s) waited for the trailer-read window and are not in the figures")


if __name__ == "__main__":
    main()
