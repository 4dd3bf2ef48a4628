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
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from rau_rig import RauRig  # noqa: E402  (benchmarks/ is the script's own folder)

from edge_agent.config import (  # noqa: E402
    SiteConfig,
    SyncConfig,
    parse_config,  # noqa: E402
)
from edge_agent.core import Core  # noqa: E402
from edge_agent.core.rules_in_force import RulesAssessor  # noqa: E402
from edge_agent.local_rules import load_indicator_set  # noqa: E402
from edge_agent.models import AcksReceived, EventBase  # noqa: E402
from edge_agent.outputs import OutputBus  # noqa: E402
from edge_agent.plates.association import PlateIndex  # noqa: E402
from edge_agent.store import Store  # noqa: E402
from edge_agent.store.checkpoint import Checkpointer  # noqa: E402
from edge_agent.sync.client import SyncClient  # noqa: E402

SITE = """
[site]
id = "bcp-bench"
region = "north"
[[lanes]]
id = "L1"
[policy]
random_secret = "benchmark-secret"
"""

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


class LiveHit(EventBase):
    """A hit made while the backlog drains; the core queues it for the RAU like any hit."""

    kind: Literal["bench_live_hit"] = "bench_live_hit"
    posted: float = 0.0


class Probe(EventBase):
    """Posted every 50 ms: how long it waits in the core's queue is the loop's gap."""

    kind: Literal["bench_probe"] = "bench_probe"
    posted: float = 0.0


def make_core(db_path: Path) -> Core:
    config = parse_config(SITE)
    rules = load_indicator_set(ROOT / "firmware_config" / "indicators" / "demo.json")
    return Core(config, Store.open(db_path), RulesAssessor(config, rules), PlateIndex(), OutputBus())


def bench_drain(workdir: Path, rau: RauRig, n: int) -> tuple[float, list[float], list[float], dict]:
    """The real core loop applies the acknowledgements and handles the live hits and probes."""
    db_path = workdir / "agent.db"
    store = Store.open(db_path)
    now = datetime.now(UTC)
    for start in range(0, n, 10_000):  # the backlog an outage left (not timed)
        with store.transaction():
            for _ in range(min(10_000, n - start)):
                store.outbox_append("crossing", PAYLOAD, now)
    store.close()
    core = make_core(db_path)
    checkpointer = Checkpointer(db_path).start(core.store.conn)  # as the agent runs it
    live_sent: dict[str, float] = {}  # outbox id -> when its hit was posted
    latencies: list[float] = []
    gaps: list[float] = []

    def live_hit(ctx: Any, event: LiveHit) -> list:
        event_id = ctx.store.outbox_append("hit", {**PAYLOAD, "indicator_id": "C-WEIGHT-10"}, datetime.now(UTC))
        live_sent[event_id] = event.posted
        return []

    def probe(ctx: Any, event: Probe) -> list:
        gaps.append(time.perf_counter() - event.posted)
        return []

    core.register(LiveHit, live_hit)
    core.register(Probe, probe)
    acked_at: dict[str, float] = {}

    def to_core(event: Any) -> None:  # the sync thread's posts: note when a live hit's ack came
        if isinstance(event, AcksReceived):
            arrived = time.perf_counter()
            for event_id in event.ids:
                if event_id in live_sent:
                    acked_at[event_id] = arrived
        core.post(event)

    done = threading.Event()

    def every_50_ms() -> None:
        while not done.wait(0.05):
            core.post(Probe(posted=time.perf_counter()))
            core.post(LiveHit(posted=time.perf_counter()))

    try:
        sync = SyncConfig(enabled=True, broker_port=rau.port, max_inflight=1000, poll_interval_s=0.01,
                          resend_timeout_s=30, health_interval_s=3600)
        client = SyncClient(SiteConfig(id="bcp-bench", region="north", data_dir=workdir), sync, db_path, to_core)
        core_thread = threading.Thread(target=core.run, daemon=True)
        core_thread.start()
        reader = Store.reader(db_path)
        start = time.perf_counter()
        client.start()
        threading.Thread(target=every_50_ms, daemon=True).start()
        next_report = start + 30
        while True:
            # O(1): the outbox totals, less the live hits still waiting for their ack
            backlog_left = reader.outbox_count() - (len(live_sent) - len(acked_at))
            if backlog_left <= 0:
                break
            if time.perf_counter() >= next_report:
                next_report += 30
                print(f"  ... {n - backlog_left:,} of {n:,} drained after {time.perf_counter() - start:.0f} s",
                      flush=True)
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        done.set()
        health = client.health()
        health["acks_forgotten"] = core.counters["acks_forgotten"]
        client.stop()
        core.stop()
        core_thread.join(10)
        checkpointer.stop()
        reader.close()
        latencies = [acked_at[i] - live_sent[i] for i in acked_at]
    finally:
        core.store.close()
    stored = rau.stored("crossing")
    if stored != n:
        raise SystemExit(f"central store holds {stored} of {n} backlog events")
    return n / elapsed, latencies, gaps, health


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
        with RauRig(workdir) as rau:
            body = json.dumps({**PAYLOAD, "id": "01JBENCH000000000000000000", "stream": "crossing"}).encode()
            raw = bench_raw(rau.port, args.events, body)
            drain, latencies, lateness, health = bench_drain(workdir, rau, args.events)
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
    if health["acks_forgotten"]:
        print(f"  acknowledgements forgotten past the core's cap (rows sent again): {health['acks_forgotten']:,}")
    if lateness:
        ordered = sorted(lateness)
        print(
            f"core-loop gaps during the drain ({len(ordered)} probes every 50 ms, time queued): "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms "
            f"(target max <= 100 ms)"
        )


if __name__ == "__main__":
    main()
