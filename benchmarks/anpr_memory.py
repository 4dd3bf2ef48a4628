"""Local recognition's resident memory, with and without handing large freed buffers back.

Two child processes read the same real US photos (../shared/data/plates_us) with
`LocalRecognizer`, one after the other: one as the agent runs it (glibc serves
allocations over 1 MiB by mmap, so onnxruntime's per-call activations go back to the
system when freed), one with glibc's default behaviour, which keeps freed heap memory
for reuse. mallopt is process-wide, hence separate processes rather than one.

For each: resident memory (VmRSS) with OpenCV imported, after loading the engine, the
highest seen between two frames and after the last; the peak (VmHWM); seconds per
frame and exact reads, so that a saving paid for in speed or accuracy would show.

    python benchmarks/anpr_memory.py [--photos 223] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
US_PHOTOS = ROOT.parent / "shared" / "data" / "plates_us"


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def child(release: bool, photos: int) -> dict:
    import cv2

    sys.path.insert(0, str(ROOT))
    from edge_agent.devices.anpr.recognition import LocalRecognizer

    rows = list(csv.DictReader((US_PHOTOS / "ground_truth.csv").open()))[:photos]
    opencv_mb = status_mb("VmRSS")
    recognizer = LocalRecognizer(release_large_buffers=release)
    recognizer.warm_up()
    loaded_mb = status_mb("VmRSS")
    exact, seconds, highest, frames = 0, 0.0, 0.0, 0
    for row in rows:
        # Decoded one at a time, as a camera delivers them: the photos are large, and
        # holding them all would hide the engine's memory under theirs.
        truth, frame = row["plate"], cv2.imread(str(US_PHOTOS / row["file"]))
        if frame is None:
            continue
        frames += 1
        started = time.perf_counter()
        found = recognizer.recognize(frame)
        seconds += time.perf_counter() - started
        exact += bool(found) and found[0].text == truth
        del frame
        highest = max(highest, status_mb("VmRSS"))
    return {"frames": frames, "opencv_mb": opencv_mb, "loaded_mb": loaded_mb, "highest_between_mb": highest,
            "after_mb": status_mb("VmRSS"), "peak_mb": status_mb("VmHWM"), "exact": exact,
            "s_per_frame": seconds / max(frames, 1)}


def run_child(release: bool, photos: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", "release" if release else "keep",
                          "--photos", str(photos)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000, help="at most this many photos (default all)")
    parser.add_argument("--quick", action="store_true", help="10 photos")
    parser.add_argument("--child", choices=("release", "keep"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    photos = 10 if args.quick else args.photos
    if args.child:
        print(json.dumps(child(args.child == "release", photos)))
        return
    if not (US_PHOTOS / "ground_truth.csv").exists():
        sys.exit(f"no photos at {US_PHOTOS}")
    results = {"as the agent runs it": run_child(True, photos), "glibc default": run_child(False, photos)}
    print(f"{'variant':<22} {'frames':>6} {'OpenCV':>8} {'loaded':>8} {'highest':>8} {'after':>8} {'peak':>8}"
          f" {'s/frame':>8} {'exact':>6}")
    for name, r in results.items():
        print(f"{name:<22} {r['frames']:>6} {r['opencv_mb']:>7.0f}M {r['loaded_mb']:>7.0f}M"
              f" {r['highest_between_mb']:>7.0f}M {r['after_mb']:>7.0f}M {r['peak_mb']:>7.0f}M"
              f" {r['s_per_frame']:>8.3f} {r['exact']:>6}")
    agent, default = results.values()
    print(f"over OpenCV after the last frame: {agent['after_mb'] - agent['opencv_mb']:.0f} MB against"
          f" {default['after_mb'] - default['opencv_mb']:.0f} MB; time per frame"
          f" {agent['s_per_frame'] / default['s_per_frame']:.2f}x")


if __name__ == "__main__":
    main()
