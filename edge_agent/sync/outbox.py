"""Publishing the outbox: order, pacing, in-flight tracking, budget policy.

The core writes outbox rows in the same transaction as the event that caused them and
deletes them when the hub's acknowledgement comes back (`Store.outbox_ack`); the sender
reads them through its own read-only `Store` (store/outbox.py holds the SQL). This
module is the sending side's bookkeeping, kept free of MQTT and SQL so each rule is a
unit test:

- `DrainSchedule` splits the outbox at connect time into the *backlog* (rows that were
  already there, sent in sequence order at a paced rate) and *live* rows (written since,
  sent at once, hits first). Live events therefore never wait behind an outage's backlog.
- `Inflight` remembers what was published and not yet acknowledged; rows older than the
  resend timeout go again. It lives in memory only: after a restart every row is unsent,
  which is exactly right since paho's in-flight messages died with the process too.
- `Pacer` is a token bucket for the backlog rate.
- `budget_decision` is the pure size policy the core applies on its tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge_agent.store import OutboxRow, Store


@dataclass
class DrainSchedule:
    """Which rows to send next. Positions are outbox sequence numbers.

    At (re)connect `restart(max_seq)` makes everything up to `max_seq` the backlog and
    rewinds it to the start: nothing counts as delivered until the hub acknowledges it.
    """

    backlog_pos: int = 0
    backlog_end: int = 0
    live_pos: int = 0

    def restart(self, max_seq: int) -> None:
        self.backlog_pos = 0
        self.backlog_end = max_seq
        self.live_pos = max_seq

    @property
    def draining(self) -> bool:
        return self.backlog_pos < self.backlog_end

    def take_live(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """Advance past new rows and return them hits first (lowest priority number)."""
        if rows:
            self.live_pos = max(self.live_pos, rows[-1].seq)
        return sorted(rows, key=lambda r: (r.priority, r.seq))

    def take_backlog(self, rows: list[OutboxRow], asked: int) -> list[OutboxRow]:
        if rows:
            self.backlog_pos = rows[-1].seq
        if len(rows) < asked:
            self.backlog_pos = self.backlog_end  # nothing more below the split
        return rows


@dataclass
class Inflight:
    """Published, not yet acknowledged: id -> (monotonic time sent, attempts)."""

    sent: dict[str, tuple[float, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sent)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.sent

    def mark(self, event_id: str, now: float) -> int:
        attempts = self.sent.get(event_id, (0.0, 0))[1] + 1
        self.sent[event_id] = (now, attempts)
        return attempts

    def acked(self, ids: Iterable[str]) -> int:
        return sum(1 for i in ids if self.sent.pop(i, None) is not None)

    def due(self, now: float, timeout_s: float, limit: int) -> list[str]:
        """Ids unacknowledged for longer than `timeout_s`, oldest first."""
        late = [(t, i) for i, (t, _) in self.sent.items() if now - t >= timeout_s]
        late.sort()
        return [i for _, i in late[:limit]]

    def forget(self, ids: Iterable[str]) -> None:
        for i in ids:
            self.sent.pop(i, None)

    def clear(self) -> None:
        self.sent.clear()


class Pacer:
    """Token bucket: `rate_per_s` sends a second on average, bursts up to `burst`.

    A rate of 0 means unpaced (the benchmark, a site on fibre).
    """

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.last = clock()

    def allowance(self) -> int:
        if self.rate <= 0:
            return self.burst
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return int(self.tokens)

    def spend(self, n: int) -> None:
        if self.rate > 0:
            self.tokens -= n


# --------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class OutboxUsage:
    customs_bytes: int
    other_bytes: int
    customs_rows: int
    other_rows: int


@dataclass(frozen=True)
class BudgetDecision:
    evict_ids: list[str]
    evict_bytes: int
    customs_alarm: bool
    total_bytes_after: int


def budget_decision(
    usage: OutboxUsage,
    oldest_other: Iterable[tuple[str, int]],
    *,
    budget_bytes: int,
    alarm_pct: float = 100.0,
) -> BudgetDecision:
    """Which rows to evict to get under the budget, and whether to raise the alarm.

    Only class 'other' (streams not in CUSTOMS_STREAMS) is ever evicted, oldest first
    (`oldest_other` is (id, bytes) in sequence order). Customs rows are never dropped:
    when they alone reach `alarm_pct` of the budget the alarm is on and the outbox grows
    past the budget rather than lose a crossing, a hit or a control act.
    """
    total = usage.customs_bytes + usage.other_bytes
    evict: list[str] = []
    freed = 0
    if total > budget_bytes:
        for event_id, size in oldest_other:
            if total - freed <= budget_bytes:
                break
            evict.append(event_id)
            freed += size
    alarm = usage.customs_bytes >= budget_bytes * alarm_pct / 100.0
    return BudgetDecision(evict, freed, alarm, total - freed)


def enforce_budget(store: Store, *, budget_bytes: int, alarm_pct: float = 100.0) -> BudgetDecision:
    """The core's tick: decide and evict in one transaction of the writer `store`."""
    usage = OutboxUsage(**store.outbox_usage())
    candidates: list[tuple[str, int]] = []
    if usage.customs_bytes + usage.other_bytes > budget_bytes:
        candidates = store.outbox_oldest_other(limit=10_000)
    decision = budget_decision(usage, candidates, budget_bytes=budget_bytes, alarm_pct=alarm_pct)
    if decision.evict_ids:
        with store.transaction():
            store.outbox_evict(decision.evict_ids)
    return decision
