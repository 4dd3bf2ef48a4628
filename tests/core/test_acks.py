"""Acknowledgements from the RAU are settled in small chunks when the loop is idle, so
a lane's event never waits behind the deletion of a drained backlog."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from testkit.waiting import wait_for

from edge_agent.core import loop
from edge_agent.models import AcksReceived, VehicleDetected


def queue_rows(core, n: int) -> list[str]:
    with core.store.transaction():
        return [core.store.outbox_append("crossing", {"n": i}, datetime.now(UTC)) for i in range(n)]


def test_a_lane_event_goes_before_a_large_acknowledgement_is_settled(core):
    ids = queue_rows(core, 1000)
    core.handle(AcksReceived(ids=ids, source="sync"))
    core.handle(VehicleDetected(lane="L1"))
    assert core.lanes["L1"].phase != "idle", "the truck was handled"
    assert core.store.outbox_count() == 1000, "no row deleted yet: the truck went first"
    assert core.settle_acks() == loop.ACK_CHUNK
    assert core.store.outbox_count() == 1000 - loop.ACK_CHUNK
    core.drain()
    assert core.store.outbox_count() == 0
    assert core.counters["acked"] == 1000


def test_the_running_loop_settles_acknowledgements_without_more_events(core):
    ids = queue_rows(core, 450)
    thread = threading.Thread(target=core.run, daemon=True)
    thread.start()
    try:
        core.post(AcksReceived(ids=ids, source="sync"))
        wait_for(lambda: core.counters["acked"] == 450, 20, what="every acknowledged row deleted")
    finally:
        core.stop()
        thread.join(5)
    assert core.store.outbox_count() == 0


def test_acknowledgements_past_the_cap_are_forgotten_and_their_rows_kept(core, monkeypatch):
    monkeypatch.setattr(loop, "ACKS_PENDING_MAX", 100)
    ids = queue_rows(core, 150)
    core.handle(AcksReceived(ids=ids, source="sync"))
    assert core.counters["acks_forgotten"] == 50
    core.drain()
    # The forgotten rows stay queued: they are sent again and the hub acknowledges them again.
    assert core.store.outbox_count() == 50
    assert {p["n"] for p in core.store.outbox_payloads()} == set(range(50))
