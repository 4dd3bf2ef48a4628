"""A fleet of crossings against the RAU's hub: N simulated sites through a real mosquitto
to real `edge-agent central serve` workers, SQLite and PostgreSQL side by side.

Each site is the agent's own sync path, imported, not copied: its `Store` (the durable
outbox, appended and acknowledged by a core thread, as the agent's core does) and its
`SyncClient` (publishing, resending what is not acknowledged, draining a backlog paced
after an outage). Only the lanes are replaced by a traffic generator. The day's sites
run in processes of `SITES_PER_PROCESS` (see `Fleet` for why), started with the same
clock and told when the RAU goes down and comes back.

1. The day: `--trucks` trucks per site over `--day-s` seconds (an accelerated clock),
   each a crossing event, one in ten with a hit before it, one in twenty with a control
   act. A fifth of the sites go offline once (the link stops, the outbox keeps
   filling) and come back after a jittered wait; at mid-day the RAU itself is down
   (`--outage-s`). Reported: what was stored, lost and stored twice; acknowledgement
   latency p50/p99 (commit at the site to the hub's ack back at the site) of events made
   while their site and the RAU were up; CPU of the hub, the database, the broker and
   the simulated sites per 1,000 events; the ledger's size per site-day (a day of `--trucks-per-day` trucks,
   scaled from the replayed day's when `--trucks` differs, as in `--quick`).
2. Ingest capacity: a backlog of `--backlog` events waits in the sites' outboxes while
   no hub runs, then 1 (and, on PostgreSQL, 2) workers start and drain it: events/s,
   and the speed-up from the second worker on this machine's cores.

    python benchmarks/fleet.py                 # 200 sites x 1,000 trucks in 600 s, both back-ends (~25 min)
    python benchmarks/fleet.py --quick         # a smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.central.ledger import Ledger  # noqa: E402
from edge_agent.central.mosquitto import PrivateBroker  # noqa: E402
from edge_agent.central.pg_cluster import PrivateCluster  # noqa: E402
from edge_agent.config import SiteConfig, SyncConfig  # noqa: E402
from edge_agent.models import AcksReceived  # noqa: E402
from edge_agent.store import Store  # noqa: E402
from edge_agent.sync.client import SyncClient  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SITES_PER_PROCESS = 50  # see Fleet


def crossing_payload(site: str, n: int, rng: random.Random) -> dict:
    plate = f"{rng.choice(['SK', 'KS', 'PR', 'TI'])}{rng.randint(100, 999)}{rng.choice('ABCDEFGH')}{n % 97:02d}"
    return {"site": site, "crossing": f"{site}-{n}", "lane": f"L{1 + n % 4}", "outcome": "released",
            "tractor_plate": plate, "trailer_plate": f"TR{rng.randint(1000, 9999)}", "reference": f"SEED-{site}-{n}",
            "measured_kg": round(rng.uniform(8_000, 40_000), 1), "channel": "green", "hits": [],
            "random_selected": False, "released_by": "", "control_act": "", "no_control_reason": ""}


# --------------------------------------------------------------------------- the sites


class RauState:
    """Whether the RAU is up, and how many times that changed: set by whoever stops and
    starts the workers, read by every shard of sites (processes of their own)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._up = context.Event()
        self._up.set()
        self._epoch = context.Value("i", 0)

    def changed(self, up: bool) -> None:
        with self._epoch.get_lock():
            self._epoch.value += 1
        (self._up.set if up else self._up.clear)()

    def now(self) -> tuple[bool, int]:
        return self._up.is_set(), self._epoch.value


class Fleet:
    """N sites in this process: one outbox database and one SyncClient each, one core
    thread for all of them (appends and acknowledgements, as each agent's core does).

    Keep it to `SITES_PER_PROCESS` sites: paho's network loop waits with select(), which
    cannot watch a descriptor numbered 1024 or more, and each site holds about nine (its
    database and the sync client's reader, each with WAL and shared memory, the socket,
    paho's wake-up pair): past about 80 sites in one process the newest ones send CONNECT
    and never see the answer. A real agent is one site per process."""

    def __init__(self, workdir: Path, port: int, n_sites: int | list[str], *, resend_timeout_s: float = 30.0,
                 drain_rate_per_s: float = 200.0, poll_interval_s: float = 0.2, max_inflight: int = 500,
                 rau: RauState | None = None) -> None:
        self.workdir = workdir
        self.port = port
        self.sites = [f"bcp-{i:03d}" for i in range(n_sites)] if isinstance(n_sites, int) else list(n_sites)
        self.sync = SyncConfig(enabled=True, broker_port=port, resend_timeout_s=resend_timeout_s,
                               drain_rate_per_s=drain_rate_per_s, poll_interval_s=poll_interval_s,
                               max_inflight=max_inflight, health_interval_s=3600)
        self.stores = {s: Store.open(workdir / s / "agent.db") for s in self.sites}
        self.clients: dict[str, SyncClient | None] = dict.fromkeys(self.sites)
        # id -> (commit time, its site's link epoch, the RAU's epoch, made while both were up): an event
        # is "live" when neither its site's link nor the RAU changed between its commit and its ack.
        self.made: dict[str, tuple[float, int, int, bool]] = {}
        self.epochs = dict.fromkeys(self.sites, 0)
        self.rau = rau or RauState()
        self.latencies: list[float] = []
        self.appended = 0
        self.acked = 0
        self.core_errors: list[str] = []
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._core = threading.Thread(target=self._run_core, name="fleet-core", daemon=True)
        self._core.start()

    # the core: the one writer of every site's database
    def _run_core(self) -> None:
        while not self._stop.is_set() or not self._work.empty():
            try:
                kind, site, items = self._work.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._apply(kind, site, items)
            except Exception as err:  # noqa: BLE001 - a dead core would stall the whole fleet unseen
                self.core_errors.append(f"{kind} {site}: {err!r}")

    def _apply(self, kind: str, site: str, items: list) -> None:
        store = self.stores[site]
        if kind == "append":
            client = self.clients[site]  # the timeline may take it away at any moment
            rau_up, rau_epoch = self.rau.now()
            live = client is not None and client.connected and rau_up
            with store.transaction():
                ids = [store.outbox_append(stream, payload, datetime.now(UTC)) for stream, payload in items]
            now = time.perf_counter()
            with self._lock:
                for event_id in ids:
                    self.made[event_id] = (now, self.epochs[site], rau_epoch, live)
                self.appended += len(ids)
        else:
            with store.transaction():
                store.outbox_ack(items)
            now = time.perf_counter()
            rau_epoch = self.rau.now()[1]
            with self._lock:
                for event_id in items:
                    made = self.made.pop(event_id, None)
                    if made is not None:
                        self.acked += 1
                        if made[3] and made[1] == self.epochs[site] and made[2] == rau_epoch:
                            self.latencies.append(now - made[0])

    def append(self, site: str, events: list[tuple[str, dict]]) -> None:
        self._work.put(("append", site, events))

    def _post(self, site: str):
        def post(event: object) -> None:
            if isinstance(event, AcksReceived):
                self._work.put(("ack", site, list(event.ids)))
        return post

    def connect(self, site: str) -> None:
        with self._lock:
            self.epochs[site] += 1
        client = SyncClient(SiteConfig(id=site, region="fleet", data_dir=self.workdir / site), self.sync,
                            self.workdir / site / "agent.db", self._post(site))
        client.start()
        self.clients[site] = client

    def disconnect(self, site: str) -> None:
        with self._lock:
            self.epochs[site] += 1
        client, self.clients[site] = self.clients[site], None
        if client is not None:
            client.stop()

    def connect_all(self) -> None:
        for site in self.sites:
            self.connect(site)

    def unacknowledged(self) -> int:
        with self._lock:
            return len(self.made)

    def wait_drained(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.core_errors:
                raise RuntimeError(f"the fleet's core failed: {self.core_errors[:3]}")
            if self._work.empty() and self.unacknowledged() == 0:
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        for site in self.sites:
            self.disconnect(site)
        self._stop.set()
        self._core.join(30)
        for store in self.stores.values():
            store.close()


# --------------------------------------------------------------------------- the RAU


@dataclass
class Workers:
    """`edge-agent central serve` processes sharing the ingest."""

    port: int
    db: str
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    cpu_s: float = 0.0  # of the workers that have stopped

    def start(self, n: int) -> None:
        for i in range(1, n + 1):
            ready = self.workdir / f"hub-{i}.ready"
            ready.unlink(missing_ok=True)
            args = [sys.executable, "-m", "edge_agent.cli", "central", "serve", "--port", str(self.port),
                    "--db", self.db, "--client-id", f"rau-hub-{i}", "--shared-group", "rau",
                    "--ready-file", str(ready)]
            with open(self.workdir / f"hub-{i}.log", "ab") as log:
                proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=log)
            self.procs.append(proc)
            deadline = time.monotonic() + 60
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker {i} did not start: "
                                     + (self.workdir / f"hub-{i}.log").read_text()[-800:])
                time.sleep(0.05)

    def cpu(self) -> float:
        return self.cpu_s + sum(process_cpu_s(p.pid) for p in self.procs if p.poll() is None)

    def stop(self) -> None:
        for proc in self.procs:
            self.cpu_s += process_cpu_s(proc.pid)
            proc.terminate()
        for proc in self.procs:
            proc.wait(60)
        self.procs = []

    def kill9(self, index: int) -> None:
        proc = self.procs.pop(index)
        self.cpu_s += process_cpu_s(proc.pid)
        proc.kill()
        proc.wait(10)


def process_cpu_s(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / CLK_TCK


def tree_cpu_s(root_pid: int) -> float:
    """CPU of a process and its live children (a PostgreSQL postmaster and its backends)."""
    total = process_cpu_s(root_pid, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == root_pid:
            total += process_cpu_s(int(stat.parent.name))
    return total


class Backend:
    """Where one run's ledger lives, and what its CPU and size are."""

    def __init__(self, kind: str, workdir: Path, cluster: PrivateCluster | None, name: str) -> None:
        self.kind = kind
        self.cluster = cluster
        if kind == "sqlite":
            self.db = str(workdir / f"{name}.db")
        else:
            assert cluster is not None
            self.db = cluster.create_database(name)

    def cpu(self) -> float:
        if self.cluster is None or self.cluster.root is None:
            return 0.0
        pid = int((self.cluster.root / "data" / "postmaster.pid").read_text().split()[0])
        return tree_cpu_s(pid)

    def check(self) -> tuple[int, int, int]:
        """(events, events stored twice, bytes of events and their indexes)."""
        ledger = Ledger(self.db)
        try:
            size = ledger.events_bytes() if hasattr(ledger, "events_bytes") else ledger.size_bytes()
            return ledger.count(), ledger.duplicates_stored(), int(size)
        finally:
            ledger.close()


# --------------------------------------------------------------------------- the day


def run_day(kind: str, workers_n: int, args, workdir: Path, cluster: PrivateCluster | None) -> dict:
    rng = random.Random(args.seed)
    run_dir = workdir / f"day-{kind}-{workers_n}"
    run_dir.mkdir()
    broker = PrivateBroker(run_dir / "broker", max_queued_messages=args.broker_queue).start()
    backend = Backend(kind, run_dir, cluster, f"day_{kind}_{workers_n}")
    workers = Workers(broker.port, backend.db, run_dir)
    sites = [f"bcp-{i:03d}" for i in range(args.sites)]
    # A fifth of the sites leave once, for 2 to 8 % of the day, and come back with a jitter.
    offline = {site: (rng.uniform(0.05, 0.85) * args.day_s, rng.uniform(0.02, 0.08) * args.day_s + rng.uniform(0, 3))
               for site in rng.sample(sites, max(1, len(sites) // 5))}
    context = multiprocessing.get_context("spawn")
    rau = RauState()
    go = context.Event()
    start_at = context.Value("d", 0.0)
    results = context.Queue()
    shards = [sites[i:i + SITES_PER_PROCESS] for i in range(0, len(sites), SITES_PER_PROCESS)]
    procs = [context.Process(target=_run_shard, name=f"fleet-shard-{n}", daemon=True,
                             args=(n, shard, {s: offline[s] for s in shard if s in offline}, vars(args), run_dir,
                                   broker.port, rau, go, start_at, results))
             for n, shard in enumerate(shards)]
    reports: list[dict] = []
    try:
        workers.start(workers_n)
        for proc in procs:
            proc.start()
        for ready in _collect(results, procs, 300):  # each shard's sites connected
            if "error" in ready:
                raise SystemExit(f"a shard of sites did not start: {ready['error']}")
        cpu0 = (workers.cpu(), backend.cpu(), process_cpu_s(broker.process.pid))
        start_at.value = time.monotonic()
        go.set()
        outage_at = args.day_s * 0.5
        _sleep_until(start_at.value + outage_at)
        rau.changed(up=False)
        workers.stop()
        _sleep_until(start_at.value + outage_at + args.outage_s)
        workers.start(workers_n)
        rau.changed(up=True)
        reports = _collect(results, procs, args.day_s + args.drain_timeout_s + 120)
        cpu1 = (workers.cpu(), backend.cpu(), process_cpu_s(broker.process.pid))
    finally:
        go.set()  # a shard still waiting for the start ends now
        for proc in procs:
            proc.join(120)
            if proc.is_alive():
                proc.kill()
        workers.stop()
        broker.stop()
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise SystemExit(f"a shard of sites failed: {errors[:3]}")
    stored, twice, size = backend.check()
    lat = sorted(x for r in reports for x in r["latencies"])
    events_total = sum(r["events"] for r in reports)
    return {
        "backend": kind, "workers": workers_n, "sites": args.sites, "events": events_total, "stored": stored,
        "stored_twice": twice, "lost": events_total - stored, "drained": all(r["drained"] for r in reports),
        "replayed_s": max(r["replayed_s"] for r in reports), "elapsed_s": max(r["elapsed_s"] for r in reports),
        "ack_p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "ack_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan"),
        "live_events": len(lat),
        "hub_cpu_per_1000": (cpu1[0] - cpu0[0]) / max(1, stored) * 1000,
        "db_cpu_per_1000": (cpu1[1] - cpu0[1]) / max(1, stored) * 1000,
        "broker_cpu_per_1000": (cpu1[2] - cpu0[2]) / max(1, stored) * 1000,
        "sites_cpu_per_1000": sum(r["cpu_s"] for r in reports) / max(1, stored) * 1000,
        "bytes_per_site_day": size / args.sites * (args.trucks_per_day / args.trucks),
        "trucks_per_day": args.trucks_per_day,
    }


def _collect(results, procs: list, timeout_s: float) -> list[dict]:
    """One message from each shard; a shard that died without a word stops the run."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < len(procs):
        try:
            got.append(results.get(timeout=1.0))
        except queue.Empty:
            if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                raise SystemExit(f"{len(procs) - len(got)} shard(s) of sites gave no answer") from None
    return got


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _run_shard(number: int, sites: list[str], offline: dict[str, tuple[float, float]], options: dict,
               run_dir: Path, port: int, rau: RauState, go, start_at, results) -> None:
    """One process's share of the sites through the day: their trucks, their time offline."""
    args = argparse.Namespace(**options)
    fleet: Fleet | None = None
    try:
        fleet = Fleet(run_dir, port, sites, resend_timeout_s=args.resend_timeout_s, rau=rau)
        fleet.connect_all()
        results.put({"shard": number})
        go.wait()
        start = start_at.value
        rng = random.Random(args.seed * 1000 + number)
        # Each truck's time in the day, per site; the events as the core would queue them.
        schedule = sorted((rng.uniform(0, args.day_s), site, n) for site in sites for n in range(args.trucks))
        timeline = threading.Thread(target=_site_timeline, args=(fleet, offline, start), daemon=True)
        timeline.start()
        events_total = 0
        position = 0
        while position < len(schedule):
            now = time.monotonic() - start
            batch: dict[str, list[tuple[str, dict]]] = {}
            while position < len(schedule) and schedule[position][0] <= now:
                _, site, n = schedule[position]
                position += 1
                batch.setdefault(site, []).extend(truck_events(site, n, rng))
            for site, events in batch.items():
                fleet.append(site, events)
                events_total += len(events)
            time.sleep(0.1)
        replayed_s = time.monotonic() - start
        timeline.join(args.day_s)
        drained = fleet.wait_drained(args.drain_timeout_s)
        elapsed_s = time.monotonic() - start
        results.put({"shard": number, "events": events_total, "drained": drained, "replayed_s": replayed_s,
                     "elapsed_s": elapsed_s, "latencies": fleet.latencies, "cpu_s": time.process_time()})
    except Exception as err:  # noqa: BLE001 - the parent reports it and stops the run
        results.put({"shard": number, "error": repr(err)})
    finally:
        if fleet is not None:
            fleet.close()


def truck_events(site: str, n: int, rng: random.Random) -> list[tuple[str, dict]]:
    """A truck's events: one in ten has a hit before its crossing, one in twenty a control act."""
    events: list[tuple[str, dict]] = []
    body = crossing_payload(site, n, rng)
    if rng.random() < 0.1:
        events.append(("hit", {"site": site, "crossing": body["crossing"], "reference": body["reference"],
                               "indicator_id": "C-WEIGHT-10", "version": 1, "level": "central",
                               "channel": "red", "title": "Weight", "instructions": "Weigh again.",
                               "matched": {"deviation_abs_pct": 21.0}, "notify": []}))
        body["channel"], body["hits"] = "red", ["C-WEIGHT-10"]
    if rng.random() < 0.05:
        events.append(("control_act", {"site": site, "crossing": body["crossing"], "result": "no_finding",
                                       "control_type": "documentary", "user": "officer"}))
    events.append(("crossing", body))
    return events


def _site_timeline(fleet: Fleet, offline: dict[str, tuple[float, float]], start: float) -> None:
    """This shard's sites leaving and coming back, on the day's clock."""
    moments = sorted([(at, "off", site) for site, (at, _) in offline.items()]
                     + [(at + length, "on", site) for site, (at, length) in offline.items()])
    for at, what, site in moments:
        _sleep_until(start + at)
        (fleet.disconnect if what == "off" else fleet.connect)(site)


# --------------------------------------------------------------------------- ingest capacity


def run_capacity(kind: str, workers_n: int, args, workdir: Path, cluster: PrivateCluster | None) -> dict:
    """Drain a backlog that waited while no hub ran: what the workers store per second."""
    run_dir = workdir / f"capacity-{kind}-{workers_n}"
    run_dir.mkdir()
    broker = PrivateBroker(run_dir / "broker", max_queued_messages=args.broker_queue).start()
    backend = Backend(kind, run_dir, cluster, f"cap_{kind}_{workers_n}")
    workers = Workers(broker.port, backend.db, run_dir)
    sites = min(args.sites, 50)
    fleet = Fleet(run_dir, broker.port, sites, drain_rate_per_s=0, max_inflight=1000, poll_interval_s=0.05,
                  resend_timeout_s=60)
    rng = random.Random(args.seed)
    try:
        per_site = args.backlog // sites
        for site in fleet.sites:
            for chunk in range(0, per_site, 500):
                fleet.append(site, [("crossing", crossing_payload(site, chunk + n, rng))
                                    for n in range(min(500, per_site - chunk))])
        while fleet.appended < per_site * sites:
            time.sleep(0.1)
        workers.start(workers_n)
        cpu0 = (workers.cpu(), backend.cpu(), process_cpu_s(broker.process.pid), time.process_time())
        start = time.perf_counter()
        fleet.connect_all()
        drained = fleet.wait_drained(args.drain_timeout_s)
        elapsed = time.perf_counter() - start
        cpu1 = (workers.cpu(), backend.cpu(), process_cpu_s(broker.process.pid), time.process_time())
    finally:
        fleet.close()
        workers.stop()
        broker.stop()
    stored, twice, _ = backend.check()
    return {"backend": kind, "workers": workers_n, "events": per_site * sites, "stored": stored,
            "stored_twice": twice, "drained": drained, "events_per_s": stored / elapsed, "elapsed_s": elapsed,
            "hub_cpu_s": cpu1[0] - cpu0[0], "db_cpu_s": cpu1[1] - cpu0[1], "broker_cpu_s": cpu1[2] - cpu0[2],
            "sites_cpu_s": cpu1[3] - cpu0[3], "wall_s": elapsed}


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--trucks", type=int, default=1000, help="trucks per site in the replayed day")
    parser.add_argument("--trucks-per-day", type=int, default=1000,
                        help="a site-day's trucks, for the ledger's size per site-day")
    parser.add_argument("--day-s", type=float, default=600.0, help="seconds the day is replayed in")
    parser.add_argument("--outage-s", type=float, default=30.0, help="the RAU's outage at mid-day")
    parser.add_argument("--backlog", type=int, default=100_000, help="events waiting for the capacity runs")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--day-workers", type=int, default=2, help="PostgreSQL workers in the day run")
    parser.add_argument("--resend-timeout-s", type=float, default=30.0, help="the sites' sync.resend_timeout_s")
    parser.add_argument("--broker-queue", type=int, default=500_000, help="mosquitto max_queued_messages")
    parser.add_argument("--drain-timeout-s", type=float, default=600.0)
    parser.add_argument("--skip-day", action="store_true")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10 sites, a 15 s day, small backlog")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.sites, args.trucks, args.day_s, args.outage_s, args.backlog = 10, 50, 8.0, 2.0, 4_000
        args.resend_timeout_s = 3.0
    kinds = [k for k in args.backends.split(",") if k]
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    cluster = PrivateCluster(durable=True, settings={"max_wal_size": "2GB"}).start() if "postgresql" in kinds else None
    results: dict[str, list[dict]] = {"day": [], "capacity": []}
    try:
        if not args.skip_day:
            for kind in kinds:
                n = args.day_workers if kind == "postgresql" else 1
                results["day"].append(run_day(kind, n, args, workdir, cluster))
                report_day(results["day"][-1])
        for kind in kinds:
            for n in ([1, 2] if kind == "postgresql" else [1]):
                results["capacity"].append(run_capacity(kind, n, args, workdir, cluster))
                report_capacity(results["capacity"][-1])
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    caps = {(r["backend"], r["workers"]): r["events_per_s"] for r in results["capacity"]}
    if ("postgresql", 1) in caps and ("postgresql", 2) in caps:
        print(f"PostgreSQL, 2 workers vs 1: {caps[('postgresql', 2)] / caps[('postgresql', 1)]:.2f}x"
              f" on {os.cpu_count()} cores shared by the sites, the broker, the workers and PostgreSQL")
    if ("sqlite", 1) in caps and ("postgresql", 1) in caps:
        print(f"one worker, PostgreSQL vs SQLite: {caps[('postgresql', 1)] / caps[('sqlite', 1)]:.2f}x")
    bad = [r for r in results["day"] + results["capacity"] if r["stored_twice"] or r["stored"] != r["events"]]
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    if bad:
        raise SystemExit(f"lost or stored twice: {bad}")


def report_day(r: dict) -> None:
    print(f"day  {r['backend']:<10} {r['workers']} worker(s), {r['sites']} sites: {r['events']:,} events,"
          f" stored {r['stored']:,}, lost {r['lost']}, stored twice {r['stored_twice']};"
          f" replayed in {r['replayed_s']:.0f} s, all acknowledged after {r['elapsed_s']:.0f} s")
    print(f"     ack latency (live events, {r['live_events']:,}): p50 {r['ack_p50_ms']:.0f} ms,"
          f" p99 {r['ack_p99_ms']:.0f} ms; CPU per 1,000 events: hub {r['hub_cpu_per_1000']:.2f} s,"
          f" database {r['db_cpu_per_1000']:.2f} s, broker {r['broker_cpu_per_1000']:.2f} s,"
          f" the simulated sites {r['sites_cpu_per_1000']:.2f} s;"
          f" ledger {r['bytes_per_site_day'] / 1e6:.2f} MB per site-day of {r['trucks_per_day']:,} trucks")


def report_capacity(r: dict) -> None:
    print(f"ingest {r['backend']:<10} {r['workers']} worker(s): {r['events']:,} waiting events drained at"
          f" {r['events_per_s']:,.0f}/s in {r['elapsed_s']:.1f} s; stored twice {r['stored_twice']}")
    print(f"     CPU: hub {r['hub_cpu_s']:.1f} s, database {r['db_cpu_s']:.1f} s, broker {r['broker_cpu_s']:.1f} s,"
          f" the simulated sites {r['sites_cpu_s']:.1f} s, of {r['elapsed_s'] * (os.cpu_count() or 1):.1f} s"
          f" on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
