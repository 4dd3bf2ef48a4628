"""Plate benchmark: association under OCR errors, local recognition on rendered and real plates.

    python benchmarks/anpr.py            # 5,000 pre-arrivals x 20,000 reads, 500 rendered, 222 real photos
    python benchmarks/anpr.py --quick    # under a minute: 1,000 reads, 14 rendered, 4 photos
    python benchmarks/anpr.py --skip-association --half tuning   # recognition on one half only

Association: 5,000 open pre-arrivals (tractor + trailer, 14 countries' formats, so
10,000 plates), reads of their plates with a 10 % character error rate (of the wrong
characters 80 % look-alike swaps, 5 % dropped/extra, 15 % any other character; see
`edge_agent.simulators.anpr_camera.corrupt`). Correct = tied to the right record; wrong = tied to
another record (the number that must stay under 0.1 %); the rest get no match and go
to the officer. The index's speed is shown as a ratio against a plain linear scan of
all plates, run side by side on the same reads.

Recognition: the agent's local recognition, the same without its trained plate reader
("agent, general reader": PP-OCR's own last layer reads every line; see
edge_agent/devices/anpr/plate_head.py) and the whole-picture baseline (the whole picture
handed to the same OCR engine, its most plate-like line; `WholePicture`) side by side on
the same frames in one run, on rendered 1280x720 scenes (14 countries'
formats, one in five a two-row trailer plate, a group of its own) and on the real US
photos in ../shared/data/plates_us. Per stage:

  localised    some region the reader proposed holds the plate: its read is within one
               edit of the truth once look-alikes are folded (the photos carry no plate
               boxes, so the plate's place is known only by reading it; a plate read
               with two or more arbitrary errors counts as not found)
  read right   one of those regions is read exactly (and with O and 0 folded alike)
  end to end   the reader's answer is the plate, exactly (and with O/0 folded)

The agent reads the US photos as a site in the US would be configured: its plate
grammar has home country USA (US formats rank first; the letter O is written 0, as US
records and the set's ground truth write it). The baseline reads them as they are, so
the "(O=0)" columns, where O and 0 count alike, are the like-for-like comparison.

The real photos are split into two fixed halves by the plate's text (`half_of`):
"tuning", the photos any tuning of the recognition looked at and the plate reader was
trained on (training/plate_head.py), and "held-out", which neither did; both are
reported. Time per frame is wall time and CPU time (all threads).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import statistics
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.models import Party, PreArrival
from edge_agent.plates.association import PlateIndex, arbitrary_edits, disagreement, weighted_distance
from edge_agent.plates.normal_form import normalize_plate
from edge_agent.simulators.anpr_camera import COUNTRIES, corrupt, random_plate, render_sample

US_PHOTOS = ROOT.parent / "shared" / "data" / "plates_us"
US_HOME = ("USA",)  # the real photos are read as a US site would read them


def make_records(n: int, rng: random.Random) -> list[PreArrival]:
    party = Party(name="Benchmark d.o.o.", country="RS")
    records, seen = [], set()
    while len(records) < n:
        _, tractor = random_plate(rng)
        _, trailer = random_plate(rng)
        if normalize_plate(tractor) in seen or normalize_plate(trailer) in seen:
            continue  # one truck per plate: duplicates are a SEED data problem, not OCR
        seen.update((normalize_plate(tractor), normalize_plate(trailer)))
        records.append(PreArrival(reference=f"REF{len(records):06d}", tractor_plate=tractor,
                                  trailer_plate=trailer, gross_kg=30000, consignor=party, consignee=party))
    return records


def bench_association(records: int, reads: int, error_rate: float, seed: int, scan_reads: int = 100,
                      unknown: int = 1000) -> dict:
    rng = random.Random(seed)
    # Trucks with no pre-arrival record drive up too: their plates are drawn like the
    # others but never indexed, so any association of theirs is someone else's declaration.
    everyone = make_records(records + unknown, rng)
    pool, strangers = everyone[:records], everyone[records:]
    index = PlateIndex()
    started = time.perf_counter()
    index.add_many(pool)
    build_s = time.perf_counter() - started
    correct = wrong = none = 0
    times = []
    trials = []
    for _ in range(reads):
        record = rng.choice(pool)
        role, plate = rng.choice((("tractor", record.tractor_plate), ("trailer", record.trailer_plate)))
        read = corrupt(plate, error_rate, rng)
        trials.append((record.reference, role, read))
    index.match(trials[0][2])  # first call builds the candidate list
    for reference, role, read in trials:
        t = time.perf_counter()
        found = index.match(read)
        times.append(time.perf_counter() - t)
        if found is None:
            none += 1
        elif found.reference == reference and found.role.value == role:
            correct += 1
        else:
            wrong += 1
    stranger_reads = [corrupt(rng.choice((r.tractor_plate, r.trailer_plate)), error_rate, rng) for r in strangers]
    tied = sum(index.match(read) is not None for read in stranger_reads)
    # Both plates read, as in a lane with two cameras: the other plate corroborates the
    # declaration one read was tied to (what the core does before assessing).
    by_reference = {r.reference: r for r in pool}
    known_pairs = [pair_outcome(index, by_reference, r, error_rate, rng) for r in rng.sample(pool, len(strangers))]
    stranger_pairs = [pair_outcome(index, by_reference, r, error_rate, rng) for r in strangers]
    # Baseline: a linear scan computing the weighted distance to every plate.
    plates = [(normalize_plate(r.tractor_plate), r.reference) for r in pool] + \
             [(normalize_plate(r.trailer_plate), r.reference) for r in pool]
    sample = trials[:scan_reads]
    t = time.perf_counter()
    for _, _, read in sample:
        text = normalize_plate(read)
        min(plates, key=lambda p: weighted_distance(text, p[0]))
    scan_s = (time.perf_counter() - t) / len(sample)
    mean_s = statistics.fmean(times)
    return {"records": records, "reads": reads, "correct": correct, "wrong": wrong, "none": none,
            "build_s": build_s, "mean_ms": 1000 * mean_s, "p99_ms": 1000 * sorted(times)[int(0.99 * len(times))],
            "scan_ms": 1000 * scan_s, "speedup": scan_s / mean_s, "unknown": len(stranger_reads), "tied": tied,
            "pairs": len(known_pairs),
            "pairs_correct": sum(o[0] == "correct" for o in known_pairs),
            "pairs_wrong": sum(o[0] == "wrong" for o in known_pairs),
            "strangers_tied_one_read": sum(o != "none" for o in (s[1] for s in stranger_pairs)),
            "strangers_tied": sum(o[0] != "none" for o in stranger_pairs)}


def pair_outcome(index: PlateIndex, by_reference: dict, truck: PreArrival, error_rate: float,
                 rng: random.Random) -> tuple[str, str]:
    """(with the second-plate check, on the first matching read alone): correct, wrong or none."""
    reads = [(corrupt(truck.tractor_plate, error_rate, rng)), (corrupt(truck.trailer_plate, error_rate, rng))]
    matches = [index.match(read) for read in reads]
    first = next((i for i, m in enumerate(matches) if m is not None), None)
    if first is None:
        return "none", "none"
    found = matches[first]
    alone = "correct" if found.reference == truck.reference else "wrong"
    other = matches[1 - first]
    why = disagreement(by_reference[found.reference], found.role, reads[1 - first],
                       other.reference if other else "", index.fits)
    return ("none" if why else alone), alone


def bench_rendered(n: int, seed: int) -> dict:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        country = COUNTRIES[i % len(COUNTRIES)]
        # Every fifth a trailer's square two-row plate, counted as its own group.
        two_rows = i % 5 == 4
        text, scene = render_sample(rng, country, role="trailer" if two_rows else ("tractor", "trailer")[i % 2],
                                    rows=2 if two_rows else 1)
        samples.append(("two-row" if two_rows else country, normalize_plate(text), scene))
    return _bench_frames(((country, truth, lambda scene=scene: scene) for country, truth, scene in samples), n)


def bench_photos(limit: int | None, half: str | None = None) -> dict | None:
    import cv2

    truth = US_PHOTOS / "ground_truth.csv"
    if not truth.exists():
        return None
    rows = [row for row in csv.DictReader(truth.open()) if half in (None, half_of(row["plate"]))][:limit]
    # Decoded one at a time: holding all 222 photos would take about a gigabyte.
    frames = ((half_of(row["plate"]), row["plate"], lambda f=row["file"]: cv2.imread(str(US_PHOTOS / f)))
              for row in rows)
    return _bench_frames(frames, len(rows), home=US_HOME)


def half_of(plate: str) -> str:
    """The fixed half a real photo belongs to: "tuning" or "held-out".

    Split by the plate's text, not the file, so that the same car photographed twice
    stays on one side; crc32 so that the split is the same in every run and Python.
    """
    return HALVES[zlib.crc32(plate.encode()) % 2]


HALVES = ("tuning", "held-out")


class WholePicture:
    """The baseline: the whole picture to the same OCR engine, its most plate-like line.

    No localiser, no second look: RapidOCR's own detector and reader on the picture as
    it is, every line (and each pair of neighbours on one text line, as a plate split
    by its separator) that could be a plate, the surest first. Kept here, apart from
    the agent's code, so that changes to the agent cannot move the baseline.
    """

    def __init__(self, threads: int = 1) -> None:
        from rapidocr import RapidOCR

        self.engine = RapidOCR(params={"Global.log_level": "error",
                                       "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                       "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def read(self, image) -> tuple[str, list[str]]:
        """(the answer or "", the reads of every region the engine proposed)."""
        out = self.engine(image, use_det=True, use_cls=False, use_rec=True)
        if out is None or out.boxes is None or out.txts is None:
            return "", []
        lines = []
        for text, score, quad in zip(out.txts, out.scores, out.boxes):
            xs, ys = [p[0] for p in quad], [p[1] for p in quad]
            lines.append((str(text), float(score), (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))))
        lines.sort(key=lambda line: (line[2][1] // max(1.0, line[2][3]), line[2][0]))
        pieces = [(normalize_plate(t), s) for t, s, _ in lines]
        for (t1, s1, b1), (t2, s2, b2) in zip(lines, lines[1:]):
            same_row = abs((b1[1] + b1[3] / 2) - (b2[1] + b2[3] / 2)) < 0.5 * max(b1[3], b2[3])
            if same_row and 0 <= b2[0] - (b1[0] + b1[2]) < 1.5 * max(b1[3], b2[3]):
                pieces.append((normalize_plate(t1 + t2), min(s1, s2) * 0.97))
        regions = [text for text, _ in pieces if text]
        plausible = [(score, text) for text, score in pieces if _plate_like(text)]
        return (max(plausible)[1] if plausible else ""), regions


def _plate_like(text: str) -> bool:
    # 4..10 letters and digits with at least one digit, not a long number (a phone
    # number or a date on a truck's side).
    return 4 <= len(text) <= 10 and any(c.isdigit() for c in text) and not re.fullmatch(r"\d{8,}", text)


class AgentPipeline:
    """The agent's local recognition, as a lane runs it; `home` as a site configures it
    (the real photos are read as a US site would: US formats first, O written 0)."""

    def __init__(self, home: tuple[str, ...] = (), plate_reader: bool = True) -> None:
        from edge_agent.devices.anpr.recognition import LocalRecognizer
        from edge_agent.plates.grammars import TABLE, Grammar

        self.recognizer = LocalRecognizer(grammar=Grammar(TABLE, home=home), plate_reader=plate_reader)
        self.recognizer.warm_up()

    def read(self, image) -> tuple[str, list[str]]:
        found = self.recognizer.recognize(image)
        self.countries = found[0].countries if found else ()
        return (found[0].text if found else ""), [c.text for c in found]


def holds_plate(read: str, truth: str) -> bool:
    """A region holds the plate when its read is within one edit of the truth once
    look-alikes are folded: the plate is there, even if it is not read exactly."""
    return arbitrary_edits(read, truth) <= 1


def fold_o(text: str) -> str:
    return text.replace("O", "0")


STAGES = ("localised", "read_exact", "read_folded", "exact", "folded")


def _bench_frames(frames, count: int, home: tuple[str, ...] = ()) -> dict:
    """Every reader on every frame, interleaved frame by frame so machine load hits all
    alike: counts per stage, overall and by group (a country or a half of the set)."""
    # The agent as a lane runs it, and without its plate reader (what the trained head adds).
    readers = {"whole picture": WholePicture(), "agent, general reader": AgentPipeline(home, plate_reader=False),
               "agent": AgentPipeline(home)}
    totals: dict = {name: {"all": dict.fromkeys(STAGES, 0), "wall_s": 0.0, "cpu_s": 0.0} for name in readers}
    groups: dict = {}
    warmed = False
    n = 0
    banded = [0, 0]  # rendered one-row plates; those whose country the agent named alone
    for group, truth, load in frames:
        image = load()
        if image is None:
            continue
        if not warmed:  # onnxruntime's first runs allocate; not a frame's cost
            for reader in readers.values():
                reader.read(image)
            warmed = True
        n += 1
        groups[group] = groups.get(group, 0) + 1
        for name, reader in readers.items():
            wall, cpu = time.perf_counter(), time.process_time()
            answer, regions = reader.read(image)
            totals[name]["wall_s"] += time.perf_counter() - wall
            totals[name]["cpu_s"] += time.process_time() - cpu
            holding = [r for r in regions if holds_plate(r, truth)]
            outcome = {"localised": bool(holding), "read_exact": truth in holding,
                       "read_folded": fold_o(truth) in map(fold_o, holding),
                       "exact": answer == truth, "folded": fold_o(answer) == fold_o(truth)}
            for key in ("all", group):
                counts = totals[name].setdefault(key, dict.fromkeys(STAGES, 0))
                for stage, ok in outcome.items():
                    counts[stage] += ok
        if group in COUNTRIES:
            banded[0] += 1
            banded[1] += readers["agent"].countries == (group,)
    return {"frames": n, "groups": groups, "readers": totals, "count": count, "banded": tuple(banded)}


def print_recognition(title: str, result: dict, group_label: str, detailed_groups: bool) -> None:
    """Per stage, each reader beside the others; groups (halves) in full or (countries)
    as one line of end-to-end figures each."""
    n = result["frames"]
    readers = result["readers"]
    print(f"{title}: {n} frames")
    print(f"  {'':<24} {'localised':>10} {'read right':>11} {'(O=0)':>7} {'end to end':>11} {'(O=0)':>7}"
          f" {'s/frame':>8} {'cpu s/frame':>12}")
    keys = [("all", n)] + (sorted(result["groups"].items()) if detailed_groups else [])
    for key, size in keys:
        print(f"  {'all' if key == 'all' else f'{group_label} {key}'} ({size})")
        for name, totals in readers.items():
            c = totals[key]
            cells = " ".join(f"{100 * c[stage] / size:>{w}.1f}%" for stage, w in
                             (("localised", 9), ("read_exact", 10), ("read_folded", 6), ("exact", 10),
                              ("folded", 6)))
            timing = f" {totals['wall_s'] / n:>8.3f} {totals['cpu_s'] / n:>12.3f}" if key == "all" else ""
            print(f"    {name:<22} {cells}{timing}")
    if detailed_groups:
        return
    frames, named = result["banded"]
    if frames:
        print(f"  the agent's answer names the plate's country alone (its band read, or a format no other country"
              f" issues): {named} of {frames} one-row plates ({100 * named / frames:.0f}%)")
    print(f"  end to end exact by {group_label}: " + ", ".join(
        f"{key} ({size}) " + " / ".join(f"{100 * totals[key]['exact'] / size:.0f}%" for totals in readers.values())
        for key, size in sorted(result["groups"].items())) + f"  ({' / '.join(readers)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, small samples")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=20000)
    parser.add_argument("--rendered", type=int, default=500)
    parser.add_argument("--photos", type=int, default=None, help="limit on the real photos (default all)")
    parser.add_argument("--half", choices=HALVES, help="only this half of the real photos")
    parser.add_argument("--error-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--skip-association", action="store_true")
    parser.add_argument("--skip-recognition", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.reads, args.rendered, args.photos = 1000, 14, 4
    if not args.skip_association:
        print_association(args)
    if args.skip_recognition:
        return
    print_recognition("rendered plates", bench_rendered(args.rendered, args.seed), "country", False)
    photos = bench_photos(args.photos, args.half)
    if photos is None:
        print(f"real US photos: no data at {US_PHOTOS}")
    else:
        print_recognition("real US photos (openalpr benchmarks, endtoend/us)", photos, "half", True)


def print_association(args: argparse.Namespace) -> None:
    a = bench_association(args.records, args.reads, args.error_rate, args.seed, scan_reads=5 if args.quick else 100)
    print(f"association: {a['records']} open pre-arrivals ({2 * a['records']} plates), {a['reads']} reads, "
          f"{100 * args.error_rate:.0f} % character errors")
    print(f"  correct {a['correct']} ({100 * a['correct'] / a['reads']:.2f} %)  "
          f"wrong {a['wrong']} ({100 * a['wrong'] / a['reads']:.3f} %)  "
          f"no match {a['none']} ({100 * a['none'] / a['reads']:.2f} %)")
    if a["unknown"]:
        print(f"  trucks with no record, one plate read: {a['tied']} of {a['unknown']} "
              f"({100 * a['tied'] / a['unknown']:.1f} %) tied to someone else's declaration")
        print(f"  both plates read: trucks with no record tied to someone else's {a['strangers_tied']} of "
              f"{a['unknown']} ({100 * a['strangers_tied'] / a['unknown']:.1f} %; without the second-plate check "
              f"{100 * a['strangers_tied_one_read'] / a['unknown']:.1f} %); trucks with a record "
              f"{100 * a['pairs_correct'] / a['pairs']:.2f} % correct, "
              f"{100 * a['pairs_wrong'] / a['pairs']:.2f} % wrong")
    print(f"  match {a['mean_ms']:.3f} ms mean, {a['p99_ms']:.3f} ms p99; linear scan {a['scan_ms']:.1f} ms "
          f"-> index {a['speedup']:.0f}x faster; index built in {a['build_s']:.2f} s")


if __name__ == "__main__":
    main()
