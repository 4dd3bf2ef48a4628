"""An agent on mock pins with trucks driving through both lanes until it is killed: the
subject of the kill -9 loop (test_kill_loop.py). Prints `ended N` after each truck it
saw out of the lane, and with `--trucks 0` only starts (ending what a crash cut), drains
its outbox to the hub and exits 0.

    python tests/core/agent_under_load.py --data-dir DIR --port 1883 --run 3
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit import console_rig as rig  # noqa: E402 - after the path above
from testkit.waiting import wait_for  # noqa: E402

from edge_agent.config import SyncConfig  # noqa: E402
from edge_agent.models import ControlActRecorded, ControlCompleted, VehicleLeft  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--run", type=int, default=0, help="makes this run's references and plates its own")
    parser.add_argument("--trucks", type=int, default=-1, help="-1: until killed; 0: start, drain and exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = rig.site_config(args.data_dir)
    config = config.model_copy(update={"sync": SyncConfig(enabled=True, broker_port=args.port, poll_interval_s=0.02,
                                                          resend_timeout_s=2.0, drain_rate_per_s=0)})
    agent = rig.LaneBench(config, data_dir=args.data_dir).start()
    print("started", flush=True)
    if args.trucks == 0:
        wait_for(lambda: agent.metrics_store.outbox_count() == 0, 120, 0.05, "the outbox drained")
        agent.stop()
        print("drained", flush=True)
        return 0
    count = itertools.count() if args.trucks < 0 else range(args.trucks)
    for n in count:
        lane = ("L1", "L2")[n % 2]
        plate = f"R{args.run:02d}T{n:04d}"
        suspect = n % 3 == 0
        record = (rig.tobacco_record if suspect else rig.plain_record)(reference=f"EX-{args.run}-{n}", plate=plate)
        snap = rig.drive_in(agent, lane, record, plate, 24100 if suspect else 18000)
        if snap["phase"] in ("held", "officer_absent"):
            agent.post(ControlActRecorded(lane=lane, crossing_id=snap["crossing"], control_type="documents",
                                          result="negative", user="olga"))
            agent.post(ControlCompleted(lane=lane, user="olga", outcome="release"))
            wait_for(lambda lane=lane: agent.core.snapshot()[lane]["phase"] == "released", 20, 0.01, "release")
        agent.post(VehicleLeft(lane=lane, direction="forward"))
        wait_for(lambda lane=lane: not agent.core.snapshot()[lane]["crossing"], 20, 0.01, "the lane free")
        print(f"ended {n}", flush=True)
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
