"""At most 100 KiB of writes per truck, arrival to exit: an SD card wears by what is
written, and a year of a busy lane must not wear one out. Counted as the bytes the
process hands to write() (/proc/self/io wchar: WAL frames and checkpoints alike),
with logging silenced so only the database's writes are in the figure."""

from __future__ import annotations

import logging
from pathlib import Path

from testkit.core_rig import cross, truck

from edge_agent.models import PreArrivalReceived, VehicleLeft

TRUCKS = 200
BUDGET_PER_TRUCK = 100 * 1024


def bytes_written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def test_a_truck_costs_at_most_100_kib_of_writes_from_arrival_to_exit(core):
    for n in range(TRUCKS):
        core.post(PreArrivalReceived(record=truck(reference=f"XK26EX{n:04d}", plate=f"01 {n:03d}-AB")))
    core.drain()
    logging.disable(logging.CRITICAL)
    try:
        before = bytes_written()
        for n in range(TRUCKS):
            core.clock.now += 60
            lane = cross(core, plate=f"01{n:03d}AB")
            assert lane.phase in ("released", "held"), lane.phase
            core.post(VehicleLeft(lane="L1", direction="forward" if lane.phase == "released" else "reverse"))
            core.drain()
        per_truck = (bytes_written() - before) / TRUCKS
    finally:
        logging.disable(logging.NOTSET)
    ended = core.store.db.execute("SELECT count(*) FROM crossings WHERE ended_at != ''").fetchone()[0]
    assert ended == TRUCKS, "every truck's crossing was recorded to its end"
    assert per_truck <= BUDGET_PER_TRUCK, f"{per_truck / 1024:.1f} KiB written per truck"


def test_a_new_database_uses_small_pages(tmp_path):
    # Each commit writes every page it touches in full; 1 KiB pages are what keeps a
    # truck's dozen commits within the budget above (4 KiB pages wrote about 220 KiB).
    from edge_agent.store import Store

    store = Store.open(tmp_path / "agent.db")
    try:
        assert store.db.execute("PRAGMA page_size").fetchone()[0] == 1024
    finally:
        store.close()
