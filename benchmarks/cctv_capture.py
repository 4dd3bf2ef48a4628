"""CCTV capture-loop CPU at 1080p and 10 frames/s, against a bare decode loop.

The CCTV simulator runs in its own process (its rendering and encoding are not
counted), serving 1920x1080 MJPEG at 10 frames/s over loopback HTTP. In this process,
side by side and alternating, two loops read the same stream for the same wall time:

- baseline: `cv2.VideoCapture(url).read()` in a loop, nothing else (the decode cost
  any reader pays);
- agent: `CctvCamera` as the agent runs it: decode, keep the latest frame, every
  second frame (ring_fps 5) downscaled to 640 px and JPEG-encoded into the ring, fps
  and health bookkeeping.

Printed: process CPU seconds per second of stream (1.0 = one core busy), frames/s
achieved, CPU per frame, the agent/baseline ratio, and the resident memory with one
and with two cameras running (a 2-lane site within 150 MB is the target).

    python benchmarks/cctv_capture.py [--seconds 10] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config import CameraConfig  # noqa: E402
from edge_agent.devices.cctv.capture import CctvCamera  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_simulator(width: int, height: int, fps: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.simulators.cctv", "--port", "0", "--size", f"{width}x{height}", "--fps",
         str(fps)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("CCTV stream at "):
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, line.split()[3]


def bare_decode(url: str, seconds: float) -> tuple[float, int]:
    """CPU seconds and frames for a plain read loop over `seconds` of wall time."""
    import cv2

    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    for _ in range(5):  # past the stream probe, as the agent's measurement is
        capture.read()
    cpu0, wall0, frames = time.process_time(), time.monotonic(), 0
    while time.monotonic() - wall0 < seconds:
        ok, _frame = capture.read()
        if not ok:
            break
        frames += 1
    cpu = time.process_time() - cpu0
    capture.release()
    return cpu, frames


def agent_capture(url: str, seconds: float, cameras: int = 1) -> tuple[float, int, float, int]:
    """CPU seconds, frames (of the first camera), RSS MB and ring bytes while CctvCamera runs."""
    cams = [
        CctvCamera(CameraConfig(id=f"bench{n}", kind="cctv", role="scene", url=url), lane_id=f"L{n + 1}")
        for n in range(cameras)
    ]
    for cam in cams:
        cam.start()
    deadline = time.monotonic() + 30
    while any(c.frames < 5 for c in cams) and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu0, frames0 = time.process_time(), cams[0].frames
    stop = threading.Event()
    stop.wait(seconds)
    cpu = time.process_time() - cpu0
    frames = cams[0].frames - frames0
    rss, ring = rss_mb(), sum(c.ring.nbytes for c in cams)
    for cam in cams:
        cam.stop()
    return cpu, frames, rss, ring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wall time per measured run")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/agent pairs, alternating")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="one short round (a few seconds)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 1.5, 1

    import cv2  # noqa: F401  (counted in the baseline RSS, as in the agent)

    rss_imported = rss_mb()
    proc, url = start_simulator(args.width, args.height, args.fps)
    try:
        base_cpu = base_frames = agent_cpu = agent_frames = 0.0
        rss_one = ring_one = 0.0
        for _ in range(args.rounds):
            cpu, frames = bare_decode(url, args.seconds)
            base_cpu, base_frames = base_cpu + cpu, base_frames + frames
            cpu, frames, rss_one, ring_one = agent_capture(url, args.seconds)
            agent_cpu, agent_frames = agent_cpu + cpu, agent_frames + frames
        _, _, rss_two, ring_two = agent_capture(url, max(args.seconds, 1.5), cameras=2)
    finally:
        proc.terminate()
        proc.wait(10)

    wall = args.seconds * args.rounds
    print(f"CCTV capture loop, {args.width}x{args.height} MJPEG at {args.fps:g} frames/s over loopback HTTP, "
          f"{args.rounds} x {args.seconds:g} s per loop")
    print(f"{'loop':<34}{'CPU s per stream s':>20}{'frames/s':>10}{'CPU ms/frame':>14}")
    for name, cpu, frames in (("bare decode (baseline)", base_cpu, base_frames),
                              ("CctvCamera: decode + ring 5/s 640px", agent_cpu, agent_frames)):
        per_frame = 1000 * cpu / frames if frames else float("nan")
        print(f"{name:<34}{cpu / wall:>20.3f}{frames / wall:>10.1f}{per_frame:>14.1f}")
    ratio = (agent_cpu / agent_frames) / (base_cpu / base_frames) if base_frames and agent_frames else float("nan")
    print(f"ratio agent/baseline (CPU per frame): {ratio:.2f}")
    print(f"resident memory: {rss_imported:.0f} MB after importing OpenCV and the config; "
          f"{rss_one:.0f} MB with one camera "
          f"(ring {ring_one / 1e6:.1f} MB); {rss_two:.0f} MB with two (rings {ring_two / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
