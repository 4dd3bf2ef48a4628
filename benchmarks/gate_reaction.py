"""Gate reaction times on gpiozero's MockFactory, against bare gpiozero side by side.

Three figures, each as a ratio to a baseline run in the same process:

- command -> relay: `GateController.execute(OpenBarrier)` (queued, carried out by the
  controller's thread) until the OPEN pin goes high; baseline: a bare gpiozero
  OutputDevice switched by a thread woken through a queue, the least any threaded
  output can do.
- loop edge -> event: a loop input driven high until `VehicleDetected` is posted (the
  leading edge passes the debouncer at once); baseline: the same edge through a bare
  DigitalInputDevice callback and a queue.
- relay mismatch -> alarm: a relay whose monitoring contact does not follow, until the
  fault is posted; compared with the one-second budget the issue sets.

    python benchmarks/gate_reaction.py [--runs 200] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpiozero import DigitalInputDevice, OutputDevice
from gpiozero.pins.mock import MockFactory

from edge_agent.commands import CloseBarrier, OpenBarrier
from edge_agent.config import GateConfig
from edge_agent.devices.gate.controller import GateController
from edge_agent.simulators.barrier import simulated_barrier


def wait(condition, timeout_s: float = 10.0) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError
        time.sleep(0)  # yield: the measured thread needs the GIL
    return time.perf_counter()


def command_latency(runs: int) -> list[float]:
    factory = MockFactory()
    gate = GateController("L1", GateConfig(pin_factory="mock", pulse_s=0.05),
                          lambda e: None, pin_factory=factory, equipment=simulated_barrier(0.0))
    pin = factory.pin("GPIO17")
    out = []
    try:
        for _ in range(runs):
            wait(lambda: gate.state()["barrier"] == "closed" and not pin.state)
            start = time.perf_counter()
            gate.execute(OpenBarrier(lane="L1"))
            out.append(wait(lambda: bool(pin.state)) - start)
            wait(lambda: gate.state()["barrier"] == "open")
            gate.renew_permission()
            gate.execute(CloseBarrier(lane="L1"))
    finally:
        gate.close()
        factory.close()
    return out


def command_baseline(runs: int) -> list[float]:
    factory = MockFactory()
    device = OutputDevice("GPIO17", pin_factory=factory)
    q: queue.Queue = queue.Queue()

    def worker() -> None:
        while (item := q.get()) is not None:
            device.on() if item else device.off()

    thread = threading.Thread(target=worker)
    thread.start()
    out = []
    for _ in range(runs):
        q.put(False)
        wait(lambda: not device.value)
        start = time.perf_counter()
        q.put(True)
        out.append(wait(lambda: bool(factory.pin("GPIO17").state)) - start)
    q.put(None)
    thread.join()
    device.close()
    factory.close()
    return out


def edge_latency(runs: int) -> list[float]:
    factory = MockFactory()
    posted: list = []
    gate = GateController("L1", GateConfig(pin_factory="mock", debounce_s=0.0), posted.append, pin_factory=factory,
                          equipment=simulated_barrier())
    pin = factory.pin("GPIO5")
    out = []
    try:
        for _ in range(runs):
            # A truck that arrives, pulls forward off the loop, comes back over it and leaves
            # in reverse: VehicleDetected, then VehicleLeft(reverse), and the lane is empty again.
            before = len(posted)
            start = time.perf_counter()
            pin.drive_high()
            out.append(wait(lambda n=before: len(posted) > n) - start)
            pin.drive_low()
            time.sleep(0.002)
            pin.drive_high()
            time.sleep(0.002)
            pin.drive_low()
            wait(lambda n=before: len(posted) > n + 1)
    finally:
        gate.close()
        factory.close()
    return out


def edge_baseline(runs: int) -> list[float]:
    factory = MockFactory()
    device = DigitalInputDevice("GPIO5", pull_up=False, pin_factory=factory)
    q: queue.Queue = queue.Queue()
    seen: list = []
    device.when_activated = lambda: q.put(True)

    def worker() -> None:
        while (item := q.get()) is not None:
            seen.append(item)

    thread = threading.Thread(target=worker)
    thread.start()
    out = []
    pin = factory.pin("GPIO5")
    for _ in range(runs):
        before = len(seen)
        start = time.perf_counter()
        pin.drive_high()
        out.append(wait(lambda n=before: len(seen) > n) - start)
        pin.drive_low()
    q.put(None)
    thread.join()
    device.close()
    factory.close()
    return out


def mismatch_latency(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        factory = MockFactory()
        posted: list = []
        gate = GateController("L1", GateConfig(pin_factory="mock", feedback_pins={"barrier_open": "GPIO10"}),
                              posted.append, pin_factory=factory, equipment=simulated_barrier())
        try:
            wait(lambda g=gate: g.state()["barrier"] == "closed")
            gate.simulator.weld("barrier_open")
            start = time.perf_counter()
            gate.execute(OpenBarrier(lane="L1"))
            out.append(wait(lambda p=posted: any("disagrees" in getattr(e, "reason", "") for e in p)) - start)
        finally:
            gate.close()
            factory.close()
    return out


def summary(name: str, values: list[float], baseline: list[float] | None = None, budget_s: float | None = None) -> None:
    med = statistics.median(values)
    p99 = sorted(values)[max(0, int(len(values) * 0.99) - 1)]
    line = f"{name:<26} median {med * 1e3:8.2f} ms  p99 {p99 * 1e3:8.2f} ms  (n={len(values)})"
    if baseline:
        base = statistics.median(baseline)
        line += f"  baseline median {base * 1e3:6.2f} ms  ratio {med / base:6.1f}x"
    if budget_s:
        line += f"  budget {budget_s:g} s  used {max(values) / budget_s:5.1%} at worst"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a few seconds: 30 runs, 3 mismatch runs")
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the faults measured here are logged by design
    runs = 30 if args.quick else args.runs
    summary("command -> relay", command_latency(runs), command_baseline(runs))
    summary("loop edge -> event", edge_latency(runs), edge_baseline(runs))
    summary("relay mismatch -> alarm", mismatch_latency(3 if args.quick else 10), budget_s=1.0)


if __name__ == "__main__":
    main()
