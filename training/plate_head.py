"""Train the plate reader: the agent's `edge_agent/devices/anpr/plate_head.npz`.

    python -m training.plate_head                          # rewrites the shipped weights
    python -m training.plate_head --out /tmp/head.npz      # somewhere else
    python -m training.plate_head --folds 2                # cross-validated figures only

What it learns from, all found the way a lane finds lines (the agent's own
`LocalRecognizer`, general reader only):

- the *tuning* half of the real photos in ../shared/data/plates_us (`benchmarks/anpr.py`
  `half_of`); the held-out half is never read here, so it stays a fair test;
- rendered European plates from the simulator, from a seed the benchmark does not use.

Each line whose general read is within two edits of the plate (look-alikes folded) is a
training line, labelled with the true plate; a US record's 0 may be the letter O, so
there either is right. Every line is also seen `--augment` times jittered (margins, a
slight turn, scale, blur, contrast, JPEG). The head starts from the reader's own last
layer restricted to the plate characters and is trained with CTC (`training/ctc.py`)
and Adam, held near its start by an L2 pull (`--pull`): with a hundred real plates, the
reader's own weights are the better prior. Nothing here runs in the agent.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import random
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from anpr import US_PHOTOS, half_of  # noqa: E402

from edge_agent.devices.anpr import onnx_wire, plate_head  # noqa: E402
from edge_agent.devices.anpr.plate_head import PlateHead  # noqa: E402
from edge_agent.devices.anpr.ppocr import READER_FILE, PpOcr, models_dir  # noqa: E402
from edge_agent.devices.anpr.recognition import LocalRecognizer  # noqa: E402
from edge_agent.plates.association import arbitrary_edits  # noqa: E402
from edge_agent.plates.grammars import ALPHABET  # noqa: E402
from edge_agent.plates.normal_form import normalize_plate  # noqa: E402
from training import ctc  # noqa: E402

READER_LAST_LAYER = ("linear_8.w_0", "linear_8.b_0")  # PP-OCRv6_rec_small.onnx's CTC layer
RENDERED_SEED = 1_000  # benchmarks/anpr.py renders from seed 4
MAX_EDITS = 2


@dataclass
class Line:
    source: str  # "real" or "rendered"
    key: str  # the photo or scene it came from
    truth: str  # normal form
    crop: Any
    general: str  # the general reader's read (normal form)
    features: list[Any]  # the crop's, then each jittered copy's


def starting_head() -> PlateHead:
    """The reader's own last layer, restricted to the plate characters."""
    model = (models_dir() / READER_FILE).read_bytes()
    weights, bias = (onnx_wire.initializer(model, name) for name in READER_LAST_LAYER)
    engine_classes = PpOcr.load(plate_head=None).characters
    columns = [0] + [engine_classes.index(c) for c in ALPHABET]
    return PlateHead(weights=weights[:, columns], bias=bias[columns], classes=ALPHABET)


class _Recording(LocalRecognizer):
    """The agent's recogniser, general reader only, keeping every line crop it reads."""

    def __init__(self, engine: PpOcr) -> None:
        super().__init__(plate_reader=False)
        self._engine = engine
        self.seen: list[tuple[Any, str]] = []

    def _read_lines(self, crops):  # type: ignore[no-untyped-def]
        out = super()._read_lines(crops)
        self.seen += [(crop.copy(), text) for crop, (text, _) in zip(crops, out)]
        return out


def harvest(recorder: _Recording, frames, source: str) -> list[Line]:  # type: ignore[no-untyped-def]
    lines = []
    for key, truth, load in frames:
        recorder.seen.clear()
        recorder.recognize(load())
        for crop, text in recorder.seen:
            read = normalize_plate(text)
            if read and arbitrary_edits(read, truth) <= MAX_EDITS:
                lines.append(Line(source, key, truth, crop, read, []))
    return lines


def real_frames(limit: int | None) -> list[tuple[str, str, Any]]:
    import cv2

    rows = [r for r in csv.DictReader((US_PHOTOS / "ground_truth.csv").open()) if half_of(r["plate"]) == "tuning"]
    return [(r["file"], r["plate"], lambda f=r["file"]: cv2.imread(str(US_PHOTOS / f))) for r in rows[:limit]]


def rendered_frames(n: int) -> list[tuple[str, str, Any]]:
    from edge_agent.simulators.anpr_camera import COUNTRIES, render_sample

    rng = random.Random(RENDERED_SEED)
    out = []
    for i in range(n):
        text, scene = render_sample(rng, COUNTRIES[i % len(COUNTRIES)], role=("tractor", "trailer")[i % 2])
        out.append((f"rendered-{i}", normalize_plate(text), lambda scene=scene: scene))
    return out


def jittered(crop: Any, rng: random.Random) -> Any:
    """The crop as another camera, distance or detector might have given it."""
    import cv2

    h, w = crop.shape[:2]
    pad = int(0.3 * h) + 2
    big = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    turn = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), rng.uniform(-3, 3), rng.uniform(0.95, 1.05))
    big = cv2.warpAffine(big, turn, (big.shape[1], big.shape[0]), borderMode=cv2.BORDER_REPLICATE)

    def margin() -> int:
        return int(rng.uniform(-0.08, 0.15) * h)

    out = big[max(0, pad - margin()):pad + h + margin(), max(0, pad - margin()):pad + w + margin()]
    f = rng.uniform(0.4, 1.3)
    out = cv2.resize(out, (max(4, int(out.shape[1] * f)), max(4, int(out.shape[0] * f))), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    out = np.clip(out.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        _, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 90)])
        out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return out


def label(line: Line) -> list[list[int]]:
    """The line's characters as classes; a real (US) record's 0 may be printed O."""
    zero_or_o = [1 + ALPHABET.index("0"), 1 + ALPHABET.index("O")]
    return [zero_or_o if line.source == "real" and c == "0" else [1 + ALPHABET.index(c)] for c in line.truth]


def train(lines: list[Line], start: PlateHead, *, epochs: int, rate: float, pull: float,
          batch: int = 32, seed: int = 0, progress=print) -> PlateHead:  # type: ignore[no-untyped-def]
    """The head trained on every (line, features) pair, held near `start`."""
    examples = [(f, label(line)) for line in lines for f in line.features if f.shape[0] > 2 * len(line.truth)]
    weights, bias = start.weights.astype(np.float64), start.bias.astype(np.float64)
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros_like(bias), np.zeros_like(bias)]
    rng = random.Random(seed)
    step = 0
    for epoch in range(epochs):
        rng.shuffle(examples)
        total, started = 0.0, time.monotonic()
        for first in range(0, len(examples), batch):
            chunk = examples[first:first + batch]
            grad_w, grad_b = pull * (weights - start.weights), np.zeros_like(bias)
            for features, classes in chunk:
                loss, grad = ctc.loss_and_gradient(features @ weights + bias, classes)
                total += loss
                grad_w += features.T @ grad / len(chunk)
                grad_b += grad.sum(axis=0) / len(chunk)
            step += 1
            for i, (param, grad) in enumerate(((weights, grad_w), (bias, grad_b))):
                m, v = moments[2 * i], moments[2 * i + 1]
                m *= 0.9
                m += 0.1 * grad
                v *= 0.999
                v += 0.001 * grad ** 2
                param -= rate * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        progress(f"  epoch {epoch + 1}/{epochs}: loss {total / max(1, len(examples)):.3f} "
                 f"({time.monotonic() - started:.0f} s)")
    return PlateHead(weights=weights.astype(np.float32), bias=bias.astype(np.float32), classes=start.classes)


def right(line: Line, read: str) -> bool:
    """A read is right when it is the plate; O and 0 alike on a US record."""
    return read.replace("O", "0") == line.truth if line.source == "real" else read == line.truth


def scores(lines: list[Line], head: PlateHead) -> tuple[int, int]:
    """(lines the general reader reads right, lines `head` reads right), unjittered."""
    return (sum(right(line, line.general) for line in lines),
            sum(right(line, head.read(line.features[0])[0]) for line in lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "edge_agent" / "devices" / "anpr" / plate_head.WEIGHTS_FILE)
    parser.add_argument("--rendered", type=int, default=300, help="rendered European scenes (default 300)")
    parser.add_argument("--augment", type=int, default=30, help="jittered copies of each line (default 30)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rate", type=float, default=3e-4, help="Adam's learning rate")
    parser.add_argument("--pull", type=float, default=1e-2, help="L2 pull towards the reader's own weights")
    parser.add_argument("--limit", type=int, default=None, help="at most this many real photos")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the lines and their features in this file between runs (finding them takes minutes)")
    parser.add_argument("--folds", type=int, default=0,
                        help="report K-fold cross-validated line accuracy (by plate) instead of writing weights")
    args = parser.parse_args(argv)
    if not (US_PHOTOS / "ground_truth.csv").exists():
        print(f"no real photos at {US_PHOTOS}", file=sys.stderr)
        return 2

    start = starting_head()
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            lines = pickle.load(f)
        print(f"{len(lines)} lines from {args.cache}")
    else:
        lines = find_lines(start, args)
        if args.cache:
            with args.cache.open("wb") as f:
                pickle.dump(lines, f)
    if args.folds:
        return cross_validate(lines, start, args)
    head = train(lines, start, epochs=args.epochs, rate=args.rate, pull=args.pull)
    for source in ("real", "rendered"):
        group = [line for line in lines if line.source == source]
        general, trained = scores(group, head)
        print(f"{source} training lines {len(group)}: general reader {general}, plate reader {trained}")
    head.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} kB)")
    return 0


def find_lines(start: PlateHead, args: argparse.Namespace) -> list[Line]:
    engine = PpOcr.load(plate_head=start)
    recorder = _Recording(engine)
    print("finding lines in the tuning half of the real photos ...", flush=True)
    lines = harvest(recorder, real_frames(args.limit), "real")
    print(f"  {len(lines)} lines from {len({line.key for line in lines})} photos", flush=True)
    print(f"finding lines in {args.rendered} rendered scenes ...", flush=True)
    rendered = harvest(recorder, rendered_frames(args.rendered), "rendered")
    print(f"  {len(rendered)} lines", flush=True)
    lines += rendered
    rng = random.Random(1)
    print(f"features of each line and {args.augment} jittered copies ...", flush=True)
    for i, line in enumerate(lines):
        copies = [jittered(line.crop, rng) for _ in range(args.augment)]
        line.features = [engine.features(c) for c in [line.crop, *copies]]
        if (i + 1) % 100 == 0 or i + 1 == len(lines):
            print(f"  {i + 1}/{len(lines)} lines", flush=True)
    return lines


def cross_validate(lines: list[Line], start: PlateHead, args: argparse.Namespace) -> int:
    """Train on all folds but one, count on that one, for each fold: split by plate
    (not by the crc32 parity that made the halves)."""
    totals = {"real": [0, 0, 0], "rendered": [0, 0, 0]}
    for k in range(args.folds):
        def fold(line: Line) -> int:
            return (zlib.crc32(line.truth.encode()) >> 1) % args.folds

        print(f"fold {k + 1}/{args.folds}", flush=True)
        head = train([line for line in lines if fold(line) != k], start, epochs=args.epochs, rate=args.rate,
                     pull=args.pull)
        for source, total in totals.items():
            group = [line for line in lines if fold(line) == k and line.source == source]
            general, trained = scores(group, head)
            total[0] += len(group)
            total[1] += general
            total[2] += trained
    for source, (n, general, trained) in totals.items():
        print(f"{source} lines {n}, cross-validated: general reader {general}, plate reader {trained}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
