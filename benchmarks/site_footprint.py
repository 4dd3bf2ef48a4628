"""A two-lane site's resident memory, idle CPU and start-up time, against bare OpenCV.

Two child processes, measured the same way one after the other:

- baseline: Python that imports OpenCV and numpy and sleeps (the floor any agent that
  uses OpenCV pays);
- agent: `Agent` with two lanes as a site runs it: per lane a weighbridge reader
  (socket:// to a simulator), an ANPR listener, one CCTV camera (720p MJPEG at 10
  frames/s, ring at 5 frames/s) and the gate on gpiozero's mock pins; the console web
  server on; no trucks (the idle state a lane spends most of its day in).

The simulators run in this (the parent) process, so their work is not counted. For
each child: the time from exec to "ready", then resident memory (VmRSS) and CPU
seconds per wall second over a measuring window. Targets: two lanes within 150 MB
resident, idle CPU low.

    python benchmarks/site_footprint.py [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE = """
import sys, time
import cv2, numpy
print("ready", flush=True)
sys.stdin.readline()
"""

AGENT = """
import sys, time
from edge_agent.agent import Agent
from edge_agent.config import load_config
from edge_agent.simulators.barrier import simulated_barrier
agent = Agent(load_config(sys.argv[1]), gate_equipment=simulated_barrier()).start()
print("ready", flush=True)
sys.stdin.readline()
agent.stop()
"""


def site_file(folder: Path, scale_urls: list[str], cctv_urls: list[str]) -> Path:
    lanes = []
    second = ('barrier_open_pin = "GPIO4"\nbarrier_close_pin = "GPIO7"\nlight_red_pin = "GPIO8"\n'
              'light_green_pin = "GPIO9"\nloop_arrival_pin = "GPIO10"\nloop_on_scale_pin = "GPIO11"\n'
              'loop_under_boom_pin = "GPIO12"\nloop_exit_pin = "GPIO16"\nopen_limit_pin = "GPIO20"\n'
              'closed_limit_pin = "GPIO21"\n')
    for n, (scale_url, url) in enumerate(zip(scale_urls, cctv_urls), start=1):
        lanes.append(f"""
[[lanes]]
id = "L{n}"
[lanes.scale]
url = "{scale_url}"
protocol = "toledo"
[[lanes.cameras]]
id = "L{n}-front"
kind = "anpr"
[[lanes.cameras]]
id = "L{n}-scene"
kind = "cctv"
role = "scene"
url = "{url}"
[lanes.gate]
pin_factory = "mock"
{second if n == 2 else ""}""")
    path = folder / "site.toml"
    path.write_text(f"""
[site]
id = "bench"
region = "bench"
data_dir = "{folder}"
[console]
enabled = true
port = 0
[metrics]
port = 0
""" + "".join(lanes))
    return path


def measure(code: str, args: list[str], seconds: float) -> dict:
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        raise SystemExit(f"child did not start: {line!r}")
    ready_s = time.monotonic() - start
    time.sleep(min(5.0, seconds / 4))  # let threads settle (streams connected, first frames in)
    cpu0, t0 = cpu_seconds(child.pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(child.pid), time.monotonic()
    rss = rss_mb(child.pid)
    child.stdin.write("\n")
    child.stdin.flush()
    child.wait(30)
    return {"ready_s": ready_s, "rss_mb": rss, "cpu": (cpu1 - cpu0) / (t1 - t0)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    import os

    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per child")
    parser.add_argument("--quick", action="store_true", help="a 5 s window")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds

    from edge_agent.simulators.cctv import CctvSimulator
    from edge_agent.simulators.scale import ScaleSimulator

    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        scales = [ScaleSimulator("toledo", tcp_port=0, frame_interval_s=0.1) for _ in range(2)]
        scale_urls = [s.start() for s in scales]
        cameras = [CctvSimulator(fps=10, width=1280, height=720).start() for _ in range(2)]
        try:
            site = site_file(Path(tmp), scale_urls, [c.url for c in cameras])
            base = measure(BASELINE, [], seconds)
            agent = measure(AGENT, [str(site)], seconds)
        finally:
            for sim in (*scales, *cameras):
                sim.stop()
    print(f"{'':<34}{'ready s':>9}{'RSS MB':>9}{'CPU (cores)':>13}")
    print(f"{'baseline: python + cv2 + numpy':<34}{base['ready_s']:>9.2f}{base['rss_mb']:>9.1f}{base['cpu']:>13.3f}")
    print(f"{'agent: 2 lanes, idle':<34}{agent['ready_s']:>9.2f}{agent['rss_mb']:>9.1f}{agent['cpu']:>13.3f}")
    print(f"agent/baseline: memory x{agent['rss_mb'] / base['rss_mb']:.2f} "
          f"(+{agent['rss_mb'] - base['rss_mb']:.1f} MB), "
          f"start-up x{agent['ready_s'] / base['ready_s']:.2f}")
    print(json.dumps({"baseline": base, "agent": agent}))


if __name__ == "__main__":
    main()
