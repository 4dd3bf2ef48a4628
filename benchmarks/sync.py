"""Sync throughput and latency, each beside its baseline in the same run.

1. Durable outbox appends per second: one event per transaction (as the core commits
   them, synchronous=FULL), beside 100 per transaction.
2. Draining a backlog of N events (default 1,000,000: a long national outage) to the central store through a
   private local mosquitto: the agent's outbox -> SyncClient -> broker -> the real
   `edge-agent central serve` (another process) -> its SQLite -> ack -> outbox delete.
   Baseline: a raw paho QoS 1 publish loop of the same N payloads to the same broker,
   timed until every PUBACK is in. Target: drain rate / raw rate >= 0.5.
3. Live-event latency during that drain: a hit is appended every 50 ms while the backlog
   drains; latency is from its commit to the hub's acknowledgement arriving at the site
   (so it includes the hub's durable store). Target: p99 <= 1 s.

    python benchmarks/sync.py [--events 100000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from edge_agent.central.mosquitto import PrivateBroker  # noqa: E402
from edge_agent.config import SiteConfig, SyncConfig  # noqa: E402
from edge_agent.models import AcksReceived  # noqa: E402
from edge_agent.store import Store  # noqa: E402
from edge_agent.sync.client import SyncClient  # noqa: E402
from edge_agent.sync.outbox import enforce_budget  # noqa: E402

TICK_S = 0.05


class Tick:
    """The core's periodic tick, posted into the same queue as the acknowledgements."""

    def __init__(self) -> None:
        self.posted = time.perf_counter()

PAYLOAD = {
    "site": "bcp-bench",
    "lane": "L1",
    "outcome": "released",
    "channel": "green",
    "tractor_plate": "SK1234AB",
    "trailer_plate": "SK987CD",
    "measured_kg": 31240.0,
    "reference": "SEED-20260101-000001",
    "hits": [],
}


def bench_appends(workdir: Path, n: int) -> tuple[float, float]:
    store = Store.open(workdir / "appends.db")
    now = datetime.now(UTC)
    start = time.perf_counter()
    for _ in range(n):
        with store.transaction():
            store.outbox_append("crossing", PAYLOAD, now)
    single = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n // 100):
        with store.transaction():
            for _ in range(100):
                store.outbox_append("crossing", PAYLOAD, now)
    batched = (n // 100 * 100) / (time.perf_counter() - start)
    store.close()
    return single, batched


def bench_raw(port: int, n: int, body: bytes) -> float:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    window: list = []
    for _ in range(n):
        # The same unacknowledged window as the drain (sync.max_inflight = 1000).
        if len(window) >= 1000:
            window.pop(0).wait_for_publish(60)
        window.append(client.publish("bench/raw", body, qos=1))
    for info in window:
        info.wait_for_publish(60)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return n / elapsed


def bench_drain(workdir: Path, port: int, n: int) -> tuple[float, list[float], list[float], dict]:
    db_path = workdir / "agent.db"
    store = Store.open(db_path)
    now = datetime.now(UTC)
    for start in range(0, n, 10_000):  # the backlog an outage left (not timed)
        with store.transaction():
            for _ in range(min(10_000, n - start)):
                store.outbox_append("crossing", PAYLOAD, now)
    hub_db, ready = workdir / "central.db", workdir / "hub.ready"
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.cli",
            "central",
            "serve",
            "--port",
            str(port),
            "--db",
            str(hub_db),
            "--ready-file",
            str(ready),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "hub.log", "wb"),  # noqa: SIM115 - the hub writes to it until it stops
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline or hub.poll() is not None:
                raise SystemExit("central serve did not start: " + (workdir / "hub.log").read_text()[-500:])
            time.sleep(0.05)
        lock = threading.Lock()
        events: queue.SimpleQueue = queue.SimpleQueue()
        live_sent: dict[str, float] = {}
        latencies: list[float] = []
        tick_lateness: list[float] = []
        done = threading.Event()

        def core() -> None:  # the core's part: apply acks and tick, in the one writer
            while not done.is_set():
                try:
                    event = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if isinstance(event, Tick):
                    tick_lateness.append(time.perf_counter() - event.posted)
                    with lock:
                        enforce_budget(store, budget_bytes=512 * 2**20)
                elif isinstance(event, AcksReceived):
                    arrived = time.perf_counter()
                    with lock:
                        with store.transaction():
                            store.outbox_ack(event.ids)
                        for event_id in event.ids:
                            if event_id in live_sent:
                                latencies.append(arrived - live_sent.pop(event_id))

        def ticker() -> None:
            while not done.wait(TICK_S):
                events.put(Tick())

        def live() -> None:  # hits while the backlog drains
            while not done.wait(0.05):
                with lock:
                    with store.transaction():
                        event_id = store.outbox_append(
                            "hit", {**PAYLOAD, "indicator_id": "C-WEIGHT-10"}, datetime.now(UTC)
                        )
                    live_sent[event_id] = time.perf_counter()

        sync = SyncConfig(
            enabled=True,
            broker_port=port,
            drain_rate_per_s=0,
            max_inflight=1000,
            poll_interval_s=0.01,
            resend_timeout_s=30,
            health_interval_s=3600,
        )
        client = SyncClient(SiteConfig(id="bcp-bench", region="north", data_dir=workdir), sync, db_path, events.put)
        threading.Thread(target=core, daemon=True).start()
        threading.Thread(target=ticker, daemon=True).start()
        start = time.perf_counter()
        client.start()
        threading.Thread(target=live, daemon=True).start()
        next_report = start + 30
        while True:
            with lock:  # O(1): the outbox totals, less the live hits still unacknowledged
                left = store.outbox_count() - len(live_sent)
            if left <= 0:
                break
            if time.perf_counter() >= next_report:
                next_report += 30
                print(f"  ... {n - left:,} of {n:,} drained after {time.perf_counter() - start:.0f} s", flush=True)
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        done.set()
        health = client.health()
        client.stop()
    finally:
        hub.terminate()
        hub.wait(20)
        store.close()
    import sqlite3

    conn = sqlite3.connect(hub_db)
    stored = conn.execute("SELECT count(*) FROM events WHERE stream = 'crossing'").fetchone()[0]
    conn.close()
    if stored != n:
        raise SystemExit(f"central store holds {stored} of {n} backlog events")
    return n / elapsed, latencies, tick_lateness, health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=5_000)
    parser.add_argument("--quick", action="store_true", help="small run, a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.events, args.appends = 3_000, 1_000
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        workdir = Path(tmp)
        single, batched = bench_appends(workdir, args.appends)
        print(f"outbox appends, 1 per commit (synchronous=FULL): {single:,.0f}/s")
        print(f"outbox appends, 100 per commit:                  {batched:,.0f}/s   (ratio {single / batched:.2f})")
        broker = PrivateBroker(workdir / "broker", max_queued_messages=5000)
        broker.start()
        try:
            body = json.dumps({**PAYLOAD, "id": "01JBENCH000000000000000000", "stream": "crossing"}).encode()
            raw = bench_raw(broker.port, args.events, body)
            drain, latencies, lateness, health = bench_drain(workdir, broker.port, args.events)
        finally:
            broker.stop()
    print(f"raw paho QoS 1 publish loop (window 1000), {args.events:,} messages: {raw:,.0f}/s")
    print(
        f"backlog drain to the central store, {args.events:,}:    {drain:,.0f}/s   "
        f"ratio {drain / raw:.2f} (target >= 0.5); {args.events / drain / 60:.1f} min "
        f"({args.events / drain / 60 * 1_000_000 / args.events:.1f} min per million, target <= 10)"
    )
    print(f"  sent {health['sent']:,}, resent {health['resent']:,}, acknowledged {health['acked']:,}")
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"live hit latency during the drain (commit -> hub ack), {len(ordered)} hits: "
            f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms (target p99 <= 1000 ms)"
        )
    if lateness:
        ordered = sorted(lateness)
        print(
            f"core-loop gaps during the drain ({len(ordered)} ticks every {TICK_S * 1000:.0f} ms): "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms "
            f"(target max <= 100 ms)"
        )


if __name__ == "__main__":
    main()
