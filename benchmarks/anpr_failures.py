"""Why local recognition gets a real photo wrong: one row per photo, failures classified.

    python benchmarks/anpr_failures.py                  # the tuning half (111 photos)
    python benchmarks/anpr_failures.py --limit 30 --out /tmp/failures.tsv

Only the *tuning* half of ../shared/data/plates_us is looked at (`anpr.half_of`), so
that the held-out half stays a fair test of whatever this analysis leads to. For every
photo the agent's `LocalRecognizer` runs as a lane runs it, with every line it reads
recorded: the detector's lines on the whole picture and the reads in and of each
localiser region. A row says whether the plate was found (some read within one edit of
the truth, look-alikes folded, as `anpr.holds_plate`), which kind of region read it
best, the best raw read, the chosen answer, the truth and why the answer is wrong:

  right                 the answer is the plate
  localiser miss        no read anywhere comes within one edit of the plate
  wrong region chosen   some read is the plate exactly, another was ranked first
  decoration            the best read holds the plate plus letters around it (a state
                        name, a slogan, a frame dealer's text read into the line)
  look-alike            the best read differs only by look-alike characters (O/0, B/8...)
  misread               the best read is within one edit but not by look-alikes alone
  not a plate           the plate was found but the answer is no read of it at all

The table (tab-separated) goes to --out; the counts per class go to standard output.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from anpr import US_HOME, US_PHOTOS, half_of, holds_plate  # noqa: E402

from edge_agent.devices.anpr.recognition import LocalRecognizer  # noqa: E402
from edge_agent.plates.grammars import TABLE, Grammar  # noqa: E402
from edge_agent.plates.normal_form import canonical, normalize_plate  # noqa: E402


class TracedRecognizer(LocalRecognizer):
    """The agent's recogniser, recording each batch of lines read: which look read it
    ("whole": the detector on the whole picture, at any scale; "region": the
    localiser's regions) and the raw reads."""

    def __init__(self) -> None:
        super().__init__(grammar=Grammar(TABLE, home=US_HOME))
        self.calls: list[tuple[str, list[tuple[str, float]]]] = []
        self._kind = ""

    def _looks(self, image):  # type: ignore[no-untyped-def]
        for i, look in enumerate(super()._looks(image)):
            def traced(look=look, kind="region" if i == 1 else "whole"):  # type: ignore[no-untyped-def]
                self._kind = kind
                return look()

            yield traced

    def _read_lines(self, crops):  # type: ignore[no-untyped-def]
        out = super()._read_lines(crops)
        self.calls.append((self._kind, out))
        return out


def classify(answer: str, truth: str, reads: list[tuple[str, str]]) -> tuple[str, str, str]:
    """(class, kind of the best read, best read in normal form) for one photo."""
    if answer == truth:
        return "right", "", answer
    texts = [(kind, normalize_plate(raw)) for kind, raw in reads]
    exact = [kind for kind, text in texts if text == truth]
    if exact:
        return "wrong region chosen", exact[0], truth
    holding = [(kind, text) for kind, text in texts if holds_plate(text, truth)]
    decorated = [(kind, text) for kind, text in texts if truth in text]
    if decorated:
        kind, text = min(decorated, key=lambda kt: len(kt[1]))
        return "decoration", kind, text
    if not holding:
        return "localiser miss", "", ""
    kind, text = holding[0]
    if canonical(text) == canonical(truth):
        return "look-alike", kind, text
    return "misread", kind, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/anpr_failures.tsv"))
    args = parser.parse_args()
    import cv2

    rows = [r for r in csv.DictReader((US_PHOTOS / "ground_truth.csv").open()) if half_of(r["plate"]) == "tuning"]
    rows = rows[: args.limit]
    recognizer = TracedRecognizer()
    recognizer.warm_up()
    classes: Counter[str] = Counter()
    cpu = 0.0
    with args.out.open("w", newline="") as f:
        table = csv.writer(f, delimiter="\t")
        table.writerow(["file", "truth", "answer", "class", "best kind", "best read", "whole reads", "region reads"])
        for row in rows:
            image = cv2.imread(str(US_PHOTOS / row["file"]))
            recognizer.calls.clear()
            started = time.process_time()
            found = recognizer.recognize(image)
            cpu += time.process_time() - started
            answer = found[0].text if found else ""
            reads = [(kind, raw) for kind, lines in recognizer.calls for raw, _ in lines]
            why, kind, best = classify(answer, row["plate"], reads)
            classes[why] += 1
            whole = "; ".join(f"{raw}:{conf:.2f}" for k, lines in recognizer.calls if k == "whole"
                              for raw, conf in lines)
            region = "; ".join(f"{raw}:{conf:.2f}" for k, lines in recognizer.calls if k == "region"
                               for raw, conf in lines)
            table.writerow([row["file"], row["plate"], answer, why, kind, best, whole, region])
    n = len(rows)
    print(f"tuning half: {n} photos, {cpu / max(1, n):.3f} s CPU a frame; table in {args.out}")
    for why, count in classes.most_common():
        print(f"  {why:<22} {count:>4}  {100 * count / n:5.1f} %")


if __name__ == "__main__":
    main()
