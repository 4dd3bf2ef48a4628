"""Deleting the database rows of crossings past their period, in bounded steps.

The core is the only writer of agent.db, so the rows go in the core's tick (a tick hook,
inside the tick's transaction): at most `max_rows` rows a step, so a lane's next event
never waits behind a purge, and steps follow each other tick by tick until a pass is
through, then the next pass is due `interval_s` later. A crossing whose evidence folder
still holds files waits for the files to go first (the retention worker's turn), so a
folder is never left without the row that says what it is.

A crossing's events are the lane's events in (max(started - `lead_s`, end of the lane's
crossing before it), ended]: an arrival is stamped by its device just before the
crossing row is made, and the events of a kept crossing before it are never taken.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from edge_agent.storage.retention import CrossingState, Periods, records_due
from edge_agent.store import Store, iso
from edge_agent.store.failures import storage_failure

log = logging.getLogger(__name__)

LEAD_S = 300.0
CANDIDATES_PER_QUERY = 200


class RecordsPurger:
    """`step(now)` from the core's tick; `run_pass(now)` from a command with the agent stopped."""

    def __init__(self, store: Store, periods: Periods, *, interval_s: float = 600.0, max_rows: int = 200,
                 has_files: Callable[[str], bool] = lambda crossing_id: False, lead_s: float = LEAD_S) -> None:
        self.store = store
        self.periods = periods
        self.interval_s = interval_s
        self.max_rows = max_rows
        self.has_files = has_files
        self.lead_s = lead_s
        self.counts: Counter[str] = Counter()  # crossings_<class>, rows, failures
        self.next_due: datetime | None = None  # None: due at the next step
        self._lanes: list[str] | None = None  # the lanes left in this pass
        self._cursor: dict[str, str] = {}  # lane -> started_at of the last crossing passed
        self._restart = False

    def request(self) -> None:
        """Start a pass afresh at the next step (files just went, or a command asked): a
        pass under way may have passed over crossings whose files were still there.
        Called from other threads: the core's thread does the resetting."""
        self._restart = True
        self.next_due = None

    def step(self, now: datetime) -> int:
        """Delete up to `max_rows` rows of due crossings; returns how many went.

        A failing storage is the core's to handle (raised); any other error is logged and
        the pass put off by `interval_s`, so a bug here never costs the lanes a tick."""
        if not self._restart and self.next_due is not None and now < self.next_due:
            return 0
        try:
            return self._step(now)
        except Exception as err:
            if storage_failure(err):
                raise
            self.counts["failures"] += 1
            log.exception("retention_records_failed")
            self._lanes = None
            self.next_due = now + timedelta(seconds=self.interval_s)
            return 0

    def _step(self, now: datetime) -> int:
        if self._restart:
            self._restart, self._lanes = False, None
        if self._lanes is None:
            self._lanes = self.store.lanes_with_crossings()
            self._cursor = {}
        budget = self.max_rows
        oldest_due = now - timedelta(days=min(self.periods.records_days, self.periods.flagged_days))
        examined = 0
        while self._lanes and budget > 0 and examined < CANDIDATES_PER_QUERY:
            lane = self._lanes[0]
            rows = self.store.retention_candidates(lane, self._cursor.get(lane, ""), oldest_due,
                                                   CANDIDATES_PER_QUERY)
            if not rows:
                self._lanes.pop(0)
                continue
            examined += len(rows)  # held crossings are passed over, at most a query's worth a step
            for row in rows:
                state = CrossingState.from_row(row)
                if not records_due(state, self.periods, now) or self.has_files(state.id):
                    self._cursor[lane] = row["started_at"]
                    continue
                gone, done = self.store.purge_crossing_records(state.id, lane, self._events_after(row),
                                                               row["ended_at"], budget)
                budget -= gone
                self.counts["rows"] += gone
                if not done:
                    return self.max_rows - budget  # the same crossing goes on at the next step
                self._cursor[lane] = row["started_at"]
                self.counts[f"crossings_{'flagged' if state.flagged else 'records'}"] += 1
                log.info("retention_records_purged crossing=%s lane=%s class=%s", state.id, lane,
                         "flagged" if state.flagged else "records")
                if budget <= 0:
                    return self.max_rows
        if self._lanes is not None and not self._lanes:
            # The crossings done, the records no kept crossing points to (pre-arrivals,
            # rejected inputs); this step's remaining budget, then the next step's.
            before = iso(now - timedelta(days=self.periods.records_days))
            gone = self.store.purge_unlinked_records(before, budget) if budget > 0 else 0
            budget -= gone
            self.counts["rows"] += gone
            self.counts["unlinked"] += gone
            if budget <= 0:
                return self.max_rows
            self._lanes = None
            self.next_due = now + timedelta(seconds=self.interval_s)
        return self.max_rows - budget

    def run_pass(self, now: datetime) -> int:
        """A whole pass at once, a transaction per step (no agent runs)."""
        self.request()
        total = 0
        while True:
            with self.store.transaction():
                gone = self.step(now)
            total += gone
            if self.next_due is not None:
                return total

    def _events_after(self, row: dict) -> str:
        started = datetime.fromisoformat(row["started_at"])
        lower = iso(started - timedelta(seconds=self.lead_s))
        previous = self.store.previous_crossing_end(row["lane"], row["started_at"])
        return max(lower, previous) if previous else lower


def due_crossings(store: Store, periods: Periods, now: datetime,
                  has_files: Callable[[str], bool] = lambda crossing_id: False) -> list[CrossingState]:
    """The crossings whose rows a pass would delete now (for `storage purge --dry-run`)."""
    oldest_due = now - timedelta(days=min(periods.records_days, periods.flagged_days))
    out = []
    for lane in store.lanes_with_crossings():
        after = ""
        while rows := store.retention_candidates(lane, after, oldest_due, CANDIDATES_PER_QUERY):
            for row in rows:
                state = CrossingState.from_row(row)
                if records_due(state, periods, now) and not has_files(state.id):
                    out.append(state)
            after = rows[-1]["started_at"]
    return out
