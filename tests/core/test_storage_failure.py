"""The core when the storage takes no commits: events kept in order, one alarm, the
safe direction without a commit, and everything stored once the storage is back.

The database is made full with SQLite's own page limit (`PRAGMA max_page_count`), which
fails a commit with SQLITE_FULL exactly as a full disk does; tests/storage/ fills a
real file system."""

from __future__ import annotations

import logging

import pytest
from testkit import waiting
from testkit.core_rig import cross, make_core, truck

from edge_agent.commands import CloseBarrier, OpenBarrier
from edge_agent.lane import Phase
from edge_agent.models import PlateRead, PreArrivalReceived, Tick, VehicleDetected, VehicleLeft, WeightStable
from edge_agent.store.failures import storage_failure


def fill(core) -> None:
    """No more pages than the database has now: the next write that needs one fails."""
    pages = core.store.conn.execute("PRAGMA page_count").fetchone()[0]
    core.store.conn.execute(f"PRAGMA max_page_count = {pages}")


def free(core) -> None:
    core.store.conn.execute("PRAGMA max_page_count = 1073741823")


def retry(core) -> None:
    """A tick after the retry interval (the core's clock is the test's)."""
    core.clock.now += 2.0
    core.handle(Tick())


@pytest.fixture
def core(tmp_path):
    core = make_core(tmp_path / "agent.db")
    core.outputs.start()
    yield core
    core.outputs.stop()
    core.store.close()


def big_truck(n: int):
    # A record large enough that storing it needs new pages.
    record = truck(reference=f"XK26EX{n:03d}", plate=f"01 {n:03d}-AB")
    return record.model_copy(update={"items": record.items * 60})


def test_events_the_storage_refuses_are_kept_in_order_and_stored_when_it_recovers(core, caplog):
    caplog.set_level(logging.INFO)
    core.post(PreArrivalReceived(record=truck()))
    released = cross(core)
    assert released.phase is Phase.RELEASED
    fill(core)
    events = [PreArrivalReceived(record=big_truck(n)) for n in range(5)]
    events += [VehicleLeft(lane="L1"), VehicleDetected(lane="L2"),
               PlateRead(lane="L2", text="01001AB", raw="01001AB", confidence=0.9),
               WeightStable(lane="L2", gross_kg=24100)]
    for event in events:
        core.post(event)
    core.drain()

    assert core.storage_failed == "disk_full" and len(core.journal) == len(events)
    assert core.snapshot()["L1"]["phase"] == "storage_failed"
    assert core.storage_health()["state"] == "failed"
    # The truck that left gets its barrier closed without a commit; nothing opens.
    closed = waiting.wait_for(lambda: [c for c in core.recorder.commands if isinstance(c, CloseBarrier)], 5,
                              what="the barrier closed behind the truck")
    assert closed[0].lane == "L1"
    opened_before = sum(isinstance(c, OpenBarrier) for c in core.recorder.commands)
    retry(core)  # still full: still kept
    assert len(core.journal) == len(events) and core.storage_failed
    # One alarm for the change of state, not one per event or retry.
    assert sum(1 for r in caplog.records if r.message.startswith("storage_failed")) == 1

    free(core)
    retry(core)
    assert core.storage_failed == "" and len(core.journal) == 0
    stored = [r["kind"] for r in core.store.db.query("SELECT kind FROM events ORDER BY rowid")]
    assert stored[-len(events):] == [e.kind for e in events], "stored in the order they came"
    assert core.lanes["L2"].phase is Phase.RELEASED and core.lanes["L1"].phase is Phase.IDLE
    waiting.wait_for(lambda: sum(isinstance(c, OpenBarrier) for c in core.recorder.commands) > opened_before, 5,
                     what="L2's barrier opened once its decision was stored")
    assert sum(1 for r in caplog.records if r.message.startswith("storage_failed")) == 1
    assert sum(1 for r in caplog.records if r.message.startswith("storage_recovered")) == 1


def test_the_reserve_lets_the_event_finish_before_any_alarm(core):
    given = []

    def give_back(reason: str) -> bool:
        given.append(reason)
        free(core)  # what deleting the reserve file does for a full disk
        return True

    core.on_storage_failure = give_back
    fill(core)
    core.post(PreArrivalReceived(record=big_truck(1)))
    core.drain()
    assert given == ["disk_full"] and not core.storage_failed and len(core.journal) == 0
    assert core.store.prearrival("XK26EX001") is not None


def test_the_journal_is_bounded_and_says_what_it_refused(tmp_path, caplog):
    core = make_core(tmp_path / "agent.db")
    core.journal.max_events = 3
    try:
        fill(core)
        for n in range(5):
            core.post(PreArrivalReceived(record=big_truck(n)))
        core.drain()
        assert len(core.journal) == 3 and core.journal.refused == 2 and core.counters["journal_refused"] == 2
        assert sum(1 for r in caplog.records if r.message.startswith("journal_full")) == 1
    finally:
        core.store.close()


def test_a_bug_is_still_a_rejection_not_a_storage_failure(core):
    def broken(record, seen, *, now):
        raise RuntimeError("a bug in the rules")

    core.assessor = broken
    cross(core)
    assert not core.storage_failed and core.counters["core_errors"] == 1 and len(core.journal) == 0
    [(reason,)] = core.store.db.execute("SELECT reason FROM rejections").fetchall()
    assert "a bug in the rules" in reason


def test_storage_errors_are_told_from_bugs():
    import errno
    import sqlite3

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = 522  # SQLITE_IOERR_SHORT_READ
    assert storage_failure(full) == "disk_full" and storage_failure(io) == "io_error"
    assert storage_failure(OSError(errno.ENOSPC, "No space left on device")) == "disk_full"
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = OSError(errno.EIO, "Input/output error")
    assert storage_failure(wrapped) == "io_error"
    assert storage_failure(ValueError("bad")) == "" and storage_failure(sqlite3.IntegrityError("unique")) == ""
