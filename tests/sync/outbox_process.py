"""Plays the agent for the kill -9 and broker-restart tests, as the core will run it.

The main thread writes events the way the core does (each in a transaction, via
`Store.outbox_append`); one thread applies `AcksReceived` with `Store.outbox_ack`, the
only other writer action, on the same writer connection under a lock, as the core's
single thread would. `SyncClient` publishes. Exits 0 once `--count` events were written
and the outbox is empty, or runs until killed with --linger.

    python tests/sync/outbox_process.py --db agent.db --port 1883 --count 3000 --start 0
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.config import SiteConfig, SyncConfig
from edge_agent.models import AcksReceived
from edge_agent.store import Store
from edge_agent.sync.client import SyncClient

STREAMS = ("crossing", "hit", "control_act", "rechannel", "media")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--site", default="bcp-a")
    parser.add_argument("--count", type=int, default=0, help="events to write (numbered from --start)")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--per-second", type=float, default=0, help="0: as fast as possible")
    parser.add_argument("--resend-timeout", type=float, default=3.0)
    parser.add_argument("--drain-rate", type=float, default=0)
    parser.add_argument("--max-inflight", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    store = Store.open(args.db)
    lock = threading.Lock()
    events: queue.SimpleQueue = queue.SimpleQueue()
    site = SiteConfig(id=args.site, region="north", data_dir=args.db.parent)
    sync = SyncConfig(
        enabled=True,
        broker_port=args.port,
        resend_timeout_s=args.resend_timeout,
        drain_rate_per_s=args.drain_rate,
        max_inflight=args.max_inflight,
        poll_interval_s=0.02,
    )
    client = SyncClient(site, sync, args.db, events.put)

    def apply_acks() -> None:
        while True:
            event = events.get()
            if isinstance(event, AcksReceived):
                with lock, store.transaction():
                    store.outbox_ack(event.ids)

    threading.Thread(target=apply_acks, daemon=True).start()
    # Written before connecting: the rows are a backlog, drained at --drain-rate.
    for n in range(args.start, args.start + args.count):
        stream = STREAMS[n % len(STREAMS)]
        with lock, store.transaction():
            store.outbox_append(stream, {"n": n, "site": args.site}, datetime.now(UTC))
        if args.per_second:
            time.sleep(1 / args.per_second)
    print(f"written {args.count}", flush=True)
    client.start()
    while True:
        with lock:
            left = store.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        if left == 0:
            print("drained", flush=True)
            client.stop()
            return 0
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
