"""The outbox's sending rules and size budget, as pure functions and over a real SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.store import OutboxRow, Store
from edge_agent.sync.outbox import (
    DrainSchedule,
    Inflight,
    OutboxUsage,
    Pacer,
    budget_decision,
    enforce_budget,
)


def row(seq: int, priority: int = 2) -> OutboxRow:
    return OutboxRow(seq, f"id{seq:05d}", "crossing", priority, "{}")


def test_live_rows_are_sent_hits_first():
    schedule = DrainSchedule()
    schedule.restart(100)
    live = schedule.take_live([row(101, 2), row(102, 3), row(103, 0), row(104, 1)])
    assert [r.seq for r in live] == [103, 104, 101, 102]
    assert schedule.live_pos == 104


def test_backlog_is_everything_up_to_the_split_and_ends():
    schedule = DrainSchedule()
    schedule.restart(10)
    assert schedule.draining and schedule.backlog_pos == 0
    schedule.take_backlog([row(1), row(2), row(3)], asked=3)
    assert schedule.backlog_pos == 3 and schedule.draining
    schedule.take_backlog([row(9)], asked=3)  # fewer than asked: nothing more below the split
    assert not schedule.draining


def test_restart_rewinds_so_nothing_unacknowledged_is_skipped():
    schedule = DrainSchedule()
    schedule.restart(5)
    schedule.take_backlog([row(1), row(2), row(3), row(4), row(5)], asked=5)
    schedule.take_live([row(6), row(7)])
    schedule.restart(7)
    assert schedule.backlog_pos == 0 and schedule.backlog_end == 7 and schedule.live_pos == 7


def test_inflight_resends_after_the_timeout_oldest_first():
    inflight = Inflight()
    inflight.mark("a", 0.0)
    inflight.mark("b", 5.0)
    assert inflight.due(now=9.0, timeout_s=10.0, limit=10) == []
    assert inflight.due(now=10.0, timeout_s=10.0, limit=10) == ["a"]
    assert inflight.due(now=20.0, timeout_s=10.0, limit=10) == ["a", "b"]
    assert inflight.mark("a", 20.0) == 2
    assert inflight.acked(["a", "zzz"]) == 1 and "a" not in inflight and len(inflight) == 1


def test_pacer_limits_the_average_rate():
    now = [0.0]
    pacer = Pacer(100.0, burst=10, clock=lambda: now[0])
    sent = 0
    for _ in range(100):  # one simulated second in 10 ms steps
        n = pacer.allowance()
        pacer.spend(n)
        sent += n
        now[0] += 0.01
    assert 95 <= sent <= 110
    assert Pacer(0, burst=50).allowance() == 50  # unpaced


def test_budget_evicts_only_other_rows_oldest_first():
    usage = OutboxUsage(customs_bytes=600, other_bytes=700, customs_rows=6, other_rows=7)
    others = [(f"m{i}", 100) for i in range(7)]
    decision = budget_decision(usage, others, budget_bytes=1000, alarm_pct=90)
    assert decision.evict_ids == ["m0", "m1", "m2"]
    assert decision.total_bytes_after == 1000 and not decision.customs_alarm


def test_budget_never_drops_customs_and_raises_the_alarm():
    usage = OutboxUsage(customs_bytes=1500, other_bytes=200, customs_rows=15, other_rows=2)
    decision = budget_decision(usage, [("m0", 100), ("m1", 100)], budget_bytes=1000)
    assert decision.evict_ids == ["m0", "m1"]
    assert decision.customs_alarm and decision.total_bytes_after == 1500


def test_under_budget_nothing_happens():
    usage = OutboxUsage(customs_bytes=100, other_bytes=100, customs_rows=1, other_rows=1)
    decision = budget_decision(usage, [("m0", 100)], budget_bytes=1000)
    assert decision.evict_ids == [] and not decision.customs_alarm


def test_enforce_budget_over_a_real_store(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    now = datetime.now(UTC)
    with store.transaction():
        crossings = [store.outbox_append("crossing", {"pad": "x" * 200}, now) for _ in range(5)]
        media = [store.outbox_append("media", {"pad": "y" * 400}, now) for _ in range(10)]
    decision = enforce_budget(store, budget_bytes=3000, alarm_pct=50)
    reader = Store.reader(tmp_path / "agent.db")
    left = {r.id for r in reader.outbox_after(0, limit=100)}
    assert set(crossings) <= left  # customs rows all kept
    assert decision.evict_ids == media[: len(decision.evict_ids)] and decision.evict_ids
    assert not (set(decision.evict_ids) & left)
    assert sum(store.outbox_usage()[k] for k in ("customs_bytes", "other_bytes")) <= 3000
    assert decision.customs_alarm is False
    assert store.outbox_evict(crossings) == 0  # a customs row is never evictable
    reader.close()
    store.close()


def test_reader_orders_by_sequence_and_bounds(tmp_path):
    store = Store.open(tmp_path / "agent.db")
    now = datetime.now(UTC)
    with store.transaction():
        ids = [store.outbox_append(s, {}, now) for s in ("control_act", "hit", "crossing", "hit")]
    reader = Store.reader(tmp_path / "agent.db")
    assert [r.id for r in reader.outbox_after(0)] == ids
    assert [r.id for r in reader.outbox_after(1, upto=3)] == ids[1:3]
    assert reader.outbox_max_seq() == 4 and reader.outbox_count() == 4
    assert {r.id for r in reader.outbox_by_ids([ids[3], "nope"])} == {ids[3]}
    assert [r.priority for r in reader.outbox_after(0)] == [1, 0, 2, 0]
    reader.close()
    store.close()
