"""Weighbridge parsers and the reader thread: how much headroom a serial line leaves.

1. Parser throughput. For each protocol, a recorded-like stream (a truck driving on,
   settling and off, with the encoders the simulator uses) is fed in 64-byte reads.
   Frames per second is set against what a 115200-baud 8N1 line can carry of that
   frame (11,520 bytes/s divided by the frame length): the target is at least 100x,
   so decoding is never what limits a lane. Beside it, as a machine-relative baseline
   on the same bytes, a bare `bytes.split` on the frame terminator.
2. Reader CPU. A simulator sends a Toledo frame every 0.1 s over real TCP; a
   ScaleReader reads it with the stability rule and event creation; the CPU time of
   the reader thread itself (its per-thread clock) is divided by the wall time. The
   baseline is a thread waking at the same 10/s rate and doing nothing.

    python benchmarks/scale_parsers.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config import ScaleConfig  # noqa: E402
from edge_agent.devices.scale.frame import Display, WeightFrame  # noqa: E402
from edge_agent.devices.scale.protocols import PROTOCOLS  # noqa: E402
from edge_agent.devices.scale.transport import ScaleReader  # noqa: E402
from edge_agent.simulators.scale import ScaleSimulator  # noqa: E402

LINE_BYTES_PER_S = 115200 / 10  # 8N1: start + 8 data + stop bits per byte
TERMINATOR = {"toledo": b"\x02", "mt-sics": b"\n", "and": b"\r", "sma": b"\r", "rlws": b"\x02",
              "xk3190": b"\x03", "xk3190-reversed": b"="}


def truck_stream(name: str, frames: int) -> tuple[bytes, int]:
    encode = PROTOCOLS[name].encode
    out = bytearray()
    for i in range(frames):
        phase = i % 200
        kg = min(phase, 50) * 480.0 if phase < 150 else max(0.0, (200 - phase) * 480.0)
        out += encode(Display(value_kg=kg, motion=phase < 60 or phase >= 150))
    return bytes(out), frames


def parse_rate(name: str, data: bytes, frames: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        parser = PROTOCOLS[name].parser()
        count = 0
        start = time.perf_counter()
        for i in range(0, len(data), 64):
            count += sum(1 for f in parser.feed(data[i:i + 64]) if isinstance(f, WeightFrame))
        best = min(best, time.perf_counter() - start)
        assert count >= frames - 1, (name, count, frames)
    return frames / best


def split_rate(name: str, data: bytes, frames: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(0, len(data), 64):
            data[i:i + 64].split(TERMINATOR[name])
        best = min(best, time.perf_counter() - start)
    return frames / best


def thread_cpu_s(thread: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def reader_cpu(seconds: float) -> tuple[float, float, float]:
    sim = ScaleSimulator("toledo", tcp_port=0, frame_interval_s=0.1, seed=1)
    sim.start()
    sink: list = []
    reader = ScaleReader("L1", ScaleConfig(url=sim.url, protocol="toledo"), sink.append)
    reader.start()
    try:
        while reader.health()["frames"] < 3:
            time.sleep(0.05)
        sim.drive_on(24000, ramp_s=seconds / 3)
        cpu0, wall0, frames0 = thread_cpu_s(reader._thread), time.monotonic(), reader.health()["frames"]
        time.sleep(seconds)
        cpu = thread_cpu_s(reader._thread) - cpu0
        wall = time.monotonic() - wall0
        rate = (reader.health()["frames"] - frames0) / wall
    finally:
        reader.stop()
        sim.stop()
    return cpu / wall, rate, baseline_cpu(seconds)


def baseline_cpu(seconds: float) -> float:
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [stop.wait(0.1) for _ in iter(lambda: stop.is_set(), True)])
    thread.start()
    time.sleep(0.05)
    cpu0, wall0 = thread_cpu_s(thread), time.monotonic()
    time.sleep(seconds)
    cpu = thread_cpu_s(thread) - cpu0
    wall = time.monotonic() - wall0
    stop.set()
    thread.join()
    return cpu / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds in all")
    args = ap.parse_args()
    frames, repeat, seconds = (4000, 2, 2.0) if args.quick else (40000, 5, 20.0)

    print(f"{'protocol':<17}{'frame B':>8}{'line fr/s':>11}{'parser fr/s':>13}{'x line':>9}{'split fr/s':>12}"
          f"{'parser/split':>14}")
    worst = float("inf")
    for name in PROTOCOLS:
        data, n = truck_stream(name, frames)
        frame_len = len(data) / n
        line_rate = LINE_BYTES_PER_S / frame_len
        rate = parse_rate(name, data, n, repeat)
        base = split_rate(name, data, n, repeat)
        worst = min(worst, rate / line_rate)
        print(f"{name:<17}{frame_len:>8.1f}{line_rate:>11.0f}{rate:>13.0f}{rate / line_rate:>9.0f}{base:>12.0f}"
              f"{rate / base:>14.3f}")
    print(f"slowest parser: {worst:.0f}x what a 115200-baud line carries (target >= 100x)")

    share, rate, idle = reader_cpu(seconds)
    print(f"reader thread at {rate:.1f} frames/s: {100 * share:.3f}% of one core "
          f"(idle 10/s thread: {100 * idle:.4f}%, ratio {share / idle if idle else float('inf'):.0f}x)")


if __name__ == "__main__":
    main()
