"""Weeks of traffic at an accelerated clock: does the storage level off under its budget?

Each simulated day, N trucks (default 1,000) cross one of two lanes. Each truck is
written as the agent writes it: its events, crossing row, assessment (with a hit for
one in twenty, and a control act for half of those), outbox rows and gate commands in
durable transactions through the agent's `Store`, and its evidence through the real
`EvidenceStore` with the media budget (two CCTV snapshots, a plate crop, the ANPR payload,
the scale frames, a clip for a hit, then the seal, fsynced). The clock is the simulated
one: crossings end at simulated times, and after each simulated day the retention worker
(`RetentionWorker.run_once`) and the records step (`RecordsPurger`, which in the agent
runs in the core's tick) run at the day's end, as they would within it.

One truck in fifty has a hit (one in two of those a control act). Cases close: each day
three in four of the flagged crossings of three days before are released (the rest stay
held to the end), and every simulated week a plain crossing is held by hand. When the
media pass the budget's high-water mark the worker runs at once, as the agent's worker
is woken.
Printed per day: evidence media, raw and flagged bytes on disk, the database size, files
purged by class and reason, crossings on hold. At the end: that the disk use levelled off
under the budget, that every held crossing still has all its files and rows, that events
committed equal events written, that the hub (a private mosquitto and `central serve`,
reached by the agent's own sync client) holds each event queued upward exactly once,
and that the evidence chain verifies with the purges
counted apart. Periods are scaled down so that 30 days show every class go (media 7,
raw 10, records 14, flagged 20 days once released) and the cap (100 MB) is reached.

    python benchmarks/endurance.py [--days 30] [--trucks 1000] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rau_rig import RauRig  # noqa: E402  (benchmarks/ is the script's own folder)

from edge_agent.config import SiteConfig, SyncConfig  # noqa: E402
from edge_agent.evidence.budget import MediaBudget  # noqa: E402
from edge_agent.evidence.manifest import EvidenceStore  # noqa: E402
from edge_agent.evidence.verify import verify_evidence  # noqa: E402
from edge_agent.models import (  # noqa: E402
    AcksReceived,
    Assessment,
    Hit,
    PlateRead,
    PlateRole,
    VehicleDetected,
    VehicleLeft,
    WeightStable,  # noqa: E402
)
from edge_agent.storage.records import RecordsPurger  # noqa: E402
from edge_agent.storage.retention import Periods  # noqa: E402
from edge_agent.storage.worker import RetentionWorker, has_files, scan_files  # noqa: E402
from edge_agent.store import Store, iso  # noqa: E402
from edge_agent.sync.client import SyncClient  # noqa: E402

PERIODS = Periods(media_days=7, raw_days=10, records_days=14, flagged_days=20)
CAP_MB = 100
START = datetime(2025, 1, 1, tzinfo=UTC)
MB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--trucks", type=int, default=1000, help="trucks a day")
    parser.add_argument("--quick", action="store_true", help="8 days of 150 trucks, with a 10 MB cap")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the budget's state changes are counted below, not logged
    cap_mb = CAP_MB
    if args.quick:
        args.days, args.trucks, cap_mb = 8, 150, 10
    with tempfile.TemporaryDirectory(prefix="endurance-") as tmp, RauRig(Path(tmp)) as rau:
        run(Path(tmp), args.days, args.trucks, cap_mb, rau)


class Uplink:
    """The agent's own sync client sends the outbox to the hub; its acknowledgements are
    applied by the one writer (this script's thread, between trucks), as the core does."""

    def __init__(self, data_dir: Path, store: Store, port: int) -> None:
        self.store = store
        self.acks: queue.SimpleQueue = queue.SimpleQueue()
        sync = SyncConfig(enabled=True, broker_port=port, poll_interval_s=0.05, health_interval_s=3600)
        self.client = SyncClient(SiteConfig(id="bcp-endurance", region="north", data_dir=data_dir), sync,
                                 store.path, self._posted)
        self.client.start()

    def _posted(self, event: object) -> None:
        if isinstance(event, AcksReceived):
            self.acks.put(event.ids)

    def apply_acks(self) -> None:
        ids: list[str] = []
        while not self.acks.empty():
            ids += self.acks.get()
        if ids:
            with self.store.transaction():
                self.store.outbox_ack(ids)

    def drain(self, timeout_s: float = 600) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.store.outbox_count() and time.monotonic() < deadline:
            time.sleep(0.05)
            self.apply_acks()
        return self.store.outbox_count() == 0

    def stop(self) -> None:
        self.client.stop()


def run(data_dir: Path, days: int, trucks: int, cap_mb: int, rau: RauRig) -> None:
    rng = random.Random(7)
    store = Store.open(data_dir / "agent.db")
    uplink = Uplink(data_dir, store, rau.port)
    queued = 0  # outbox rows written: what the hub must end up holding
    budget = MediaBudget(cap_mb * MB, high_water_pct=90)
    evidence = EvidenceStore(data_dir / "evidence", budget)
    worker = RetentionWorker(evidence, store.path, PERIODS, budget, pause_s=0)
    records = RecordsPurger(store, PERIODS, has_files=lambda cid: has_files(evidence.root, cid))
    events_written = 0
    held: set[str] = set()  # crossings on hold at the end (automatic or manual)
    released: list[str] = []
    flagged_by_day: dict[int, list[str]] = {}
    purged_total: Counter[str] = Counter()
    wall = time.monotonic()
    print(f"{days} days x {trucks} trucks/day, media cap {cap_mb} MB (high water 90%), periods (days): "
          f"media {PERIODS.media_days} raw {PERIODS.raw_days} records {PERIODS.records_days} "
          f"flagged {PERIODS.flagged_days} after release")
    print(f"{'day':>4} {'media MB':>9} {'raw MB':>7} {'flagged MB':>10} {'db MB':>6} {'held':>5} "
          f"{'refused':>7}  purged files (class/reason)")
    n = 0
    for day in range(days):
        day_purged: Counter[str] = Counter()
        for i in range(trucks):
            n += 1
            started = START + timedelta(days=day, seconds=i * 86400 / trucks)
            cid = f"C{n:07d}"
            hit = rng.random() < 0.02
            written, upward = _truck(store, evidence, rng, cid, f"L{1 + n % 2}", started, hit)
            events_written += written
            queued += upward
            uplink.apply_acks()
            if hit:
                held.add(cid)
                flagged_by_day.setdefault(day, []).append(cid)
            if budget.state != "ok":  # the agent's worker is woken at the high-water mark
                early = worker.run_once(now=started + timedelta(seconds=70))
                purged_total.update(early.purged_files)
                day_purged.update(early.purged_files)
        now = START + timedelta(days=day + 1)
        with store.transaction():
            for k, gone in enumerate(flagged_by_day.pop(day - 3, [])):
                if k % 4 != 3:  # cases closed; one in four stays open to the end
                    store.release_hold(gone, "head", "case closed", now)
                    held.discard(gone)
                    released.append(gone)
            if day % 7 == 3:
                manual = f"C{n - trucks // 2:07d}"
                store.place_hold(manual, "head", "case", now)
                held.add(manual)
        report = worker.run_once(now=now)
        day_purged.update(report.purged_files)
        records.run_pass(now)
        purged_total.update(report.purged_files)
        files = scan_files(evidence.root)
        by_class = Counter()
        states = {r["id"]: r for r in store.retention_states(sorted({f.crossing_id for f in files}))}
        for f in files:
            by_class["flagged" if states.get(f.crossing_id, {}).get("flagged") else
                     ("media" if f.kind in ("snapshot", "clip") or f.path.endswith(".jpg") else "raw")] += f.size
        db_mb = sum(p.stat().st_size for p in data_dir.glob("agent.db*")) / MB
        print(f"{day + 1:>4} {by_class['media'] / MB:>9.1f} {by_class['raw'] / MB:>7.1f} "
              f"{by_class['flagged'] / MB:>10.1f} {db_mb:>6.1f} {store.held_count():>5} {budget.refused:>7}  "
              + (", ".join(f"{k} {v}" for k, v in sorted(day_purged.items())) or "-"))
    drained = uplink.drain()
    uplink.stop()
    at_hub = rau.stored()
    stored = store.counts()["events"]
    intact = [c for c in held if store.crossing_lane(c) is None or not has_files(evidence.root, c)]
    purges: list[str] = []
    problems = verify_evidence(evidence.root, purges=purges, unsealed_grace_s=1e12)
    media_now = budget.used_bytes
    print(f"\n{n} trucks in {time.monotonic() - wall:.0f} s; media on disk {media_now / MB:.1f} MB of a "
          f"{cap_mb} MB cap ({'under' if media_now < budget.cap_bytes else 'AT'} the cap); "
          f"{budget.refused} media files refused at the cap")
    print("purged files by class/reason: " + ", ".join(f"{k} {v}" for k, v in sorted(purged_total.items())))
    print(f"records: crossings purged {records.counts['crossings_records']} plain, "
          f"{records.counts['crossings_flagged']} flagged (released), {records.counts['rows']} rows")
    print(f"holds: {len(held)} held crossings, {len(held) - len(intact)} with every file and row intact; "
          f"{len(released)} released")
    print(f"events: {events_written} written, {stored} in the database now "
          f"(the rest purged with their crossings: {events_written - stored})")
    print(f"evidence chain: {len(problems)} problem(s), {len(purges)} purged file(s) accounted for by tombstones")
    print(f"at the hub: {at_hub} events for {queued} queued upward (crossings and hits), "
          f"{'each once' if at_hub == queued and drained else 'NOT EQUAL'}")
    store.close()
    if intact or problems or media_now >= budget.cap_bytes or at_hub != queued or not drained:
        sys.exit(1)


def _truck(store: Store, evidence: EvidenceStore, rng: random.Random, cid: str, lane: str, started: datetime,
           hit: bool) -> tuple[int, int]:
    """Write one truck; returns (events written, outbox rows queued for the RAU)."""
    upward = 0
    ended = started + timedelta(seconds=70)
    plate = f"KS{rng.randrange(1000):03d}AB"
    events = [VehicleDetected(lane=lane, at=started - timedelta(milliseconds=40), source="loop"),
              PlateRead(lane=lane, text=plate, raw=plate, confidence=0.93, role=PlateRole.TRACTOR, camera="c1",
                        at=started + timedelta(seconds=5)),
              WeightStable(lane=lane, gross_kg=18000.0, source="scale", at=started + timedelta(seconds=20)),
              VehicleLeft(lane=lane, at=ended - timedelta(milliseconds=20), source="loop")]
    row = {"id": cid, "lane": lane, "started_at": iso(started), "ended_at": "", "phase": "arriving",
           "tractor_plate": plate, "channel": ""}
    for k, event in enumerate(events):
        with store.transaction():  # one durable transaction per event, as the core commits
            store.record_event(event)
            if k == 0:
                store.save_crossing(row)
            if k == 2:
                hits = [Hit(indicator_id="IND-7", channel="red")] if hit else []
                store.record_assessment(Assessment(crossing_id=cid, lane=lane, channel="red" if hit else "green",
                                                   hits=hits, at=event.at))
                for h in hits:
                    store.outbox_append("hit", {"crossing": cid, **h.model_dump(mode="json")}, event.at)
                    upward += 1
                if hit and rng.random() < 0.5:
                    store.record_control_act({"id": f"A{cid}", "crossing_id": cid, "lane": lane, "result": "positive",
                                              "user": "olga", "at": iso(event.at), "body": "{}"})
            if k == 3:
                store.save_crossing({**row, "ended_at": iso(ended), "phase": "idle"})
                store.outbox_append("crossing", {"crossing": cid}, ended)
                upward += 1
    for what in ("arrival", "decision"):
        evidence.add_file(cid, "snapshot", f"{what}_cam1.jpg", os.urandom(8 * 1024))
    evidence.add_bytes(cid, "anpr", f"cam1-{cid}-plate.jpg", os.urandom(2 * 1024))
    evidence.add_bytes(cid, "anpr", f"cam1-{cid}.xml", b"<EventNotificationAlert/>" * 40)
    evidence.add_bytes(cid, "scale", f"{cid}.hex", b"02202020313233343030300d0a" * 8)
    if hit:
        evidence.add_file(cid, "clip", "decision_cam1.avi", os.urandom(60 * 1024))
    evidence.seal(cid)
    return len(events), upward


if __name__ == "__main__":
    main()
