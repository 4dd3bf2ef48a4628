"""The outbox: events queued for the RAU, written in the transaction of what caused them.

The core appends and deletes (on the hub's acknowledgement); the sync client reads
through its own read-only `Store` (`outbox_after`, `outbox_by_ids`, ...). Ordering,
pacing and the budget policy are the sync package's (edge_agent/sync/outbox.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.ids import new_id
from edge_agent.store.database import Database, iso

log = logging.getLogger(__name__)

# Streams that are never evicted from the outbox: what a customs decision rests on, and
# the security reports (a rejected bundle, the audit log's anchors) the RAU must see.
# Every stream the agent sends today is one; any other is class "other", evicted oldest
# first past the budget (sync/outbox.py).
CUSTOMS_STREAMS = frozenset({
    "crossing", "hit", "control_act", "local_indicator", "rechannel", "bundle_rejected", "indicators_applied",
    "prescreen_hit", "rau_raise", "rau_raise_ended", "audit_anchor", "indicator_set_imported", "evidence_head",
})
STREAM_PRIORITY = {"hit": 0, "prescreen_hit": 0, "control_act": 1, "rechannel": 1, "bundle_rejected": 1,
                   "crossing": 2}
_CHUNK = 500  # ids per IN (...) clause, well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    id: str
    stream: str
    priority: int
    payload: str


class Outbox(Database):
    # ------------------------------------------------------------------ writes (the core)

    def outbox_append(self, stream: str, payload: dict[str, Any], at: datetime) -> str:
        """Queue an event for the RAU in the caller's transaction; returns its id."""
        event_id = payload.get("id") or new_id()
        body = json.dumps({**payload, "id": event_id, "stream": stream}, default=str, separators=(",", ":"))
        self.conn.execute(
            "INSERT OR IGNORE INTO outbox (id, stream, klass, priority, payload, bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                event_id,
                stream,
                "customs" if stream in CUSTOMS_STREAMS else "other",
                STREAM_PRIORITY.get(stream, 5),
                body,
                len(body),
                iso(at),
            ],
        )
        return event_id

    def outbox_ack(self, ids: Iterable[str]) -> int:
        """Delete rows the central hub has confirmed storing; returns how many went."""
        gone = 0
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            gone += self.conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount
        return gone

    def outbox_evict(self, ids: Iterable[str]) -> int:
        """Drop undelivered rows the budget gave up on; never touches customs rows."""
        gone = 0
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            gone += self.conn.execute(
                f"DELETE FROM outbox WHERE klass != 'customs' AND id IN ({marks})", chunk
            ).rowcount
        if gone:
            log.warning("outbox_evicted rows=%d", gone)
        return gone

    # ------------------------------------------------------------------ reads (the sender, the budget)

    def outbox_count(self) -> int:
        return self._scalar("SELECT coalesce(sum(rows), 0) FROM outbox_totals")

    def outbox_oldest_at(self) -> str:
        """When the oldest unsent event was queued ("" with none)."""
        row = self._one("SELECT created_at FROM outbox ORDER BY seq LIMIT 1")
        return row[0] if row else ""

    def outbox_max_seq(self) -> int:
        return self._scalar("SELECT coalesce(max(seq), 0) FROM outbox")

    def outbox_after(self, seq: int, *, upto: int | None = None, limit: int = 500) -> list[OutboxRow]:
        """Rows with seq > `seq` (and <= `upto`), in sequence order."""
        if upto is None:
            rows = self.conn.execute("SELECT seq, id, stream, priority, payload FROM outbox WHERE seq > ?"
                                     " ORDER BY seq LIMIT ?", [seq, limit])
        else:
            rows = self.conn.execute("SELECT seq, id, stream, priority, payload FROM outbox WHERE seq > ?"
                                     " AND seq <= ? ORDER BY seq LIMIT ?", [seq, upto, limit])
        return [OutboxRow(*r) for r in rows.fetchall()]

    def outbox_by_ids(self, ids: Iterable[str]) -> list[OutboxRow]:
        out: list[OutboxRow] = []
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            out += [OutboxRow(*r) for r in self.conn.execute(
                f"SELECT seq, id, stream, priority, payload FROM outbox WHERE id IN ({marks}) ORDER BY seq", chunk
            ).fetchall()]
        return out

    def outbox_usage(self) -> dict[str, int]:
        """Bytes and rows per class, for the budget policy (edge_agent/sync/outbox.py)."""
        out = {"customs_bytes": 0, "other_bytes": 0, "customs_rows": 0, "other_rows": 0}
        for klass, rows, size in self.conn.execute("SELECT klass, rows, bytes FROM outbox_totals").fetchall():
            key = "customs" if klass == "customs" else "other"
            out[f"{key}_rows"] += rows
            out[f"{key}_bytes"] += size
        return out

    def outbox_oldest_other(self, limit: int = 10_000) -> list[tuple[str, int]]:
        """(id, bytes) of evictable rows, oldest first."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT id, bytes FROM outbox WHERE klass != 'customs' ORDER BY seq LIMIT ?", [limit]).fetchall()]

    def outbox_by_stream(self) -> list[dict[str, Any]]:
        """Backlog per stream and class: rows, bytes and the oldest row's time."""
        return [{"stream": s, "class": k, "rows": n, "bytes": b, "oldest": o} for s, k, n, b, o in self.conn.execute(
            "SELECT stream, klass, count(*), sum(bytes), min(created_at) FROM outbox GROUP BY stream, klass"
            " ORDER BY stream").fetchall()]

    def outbox_payloads(self, stream: str | None = None) -> list[dict[str, Any]]:
        """The queued events as the RAU will receive them, in sequence order."""
        if stream is None:
            rows = self.conn.execute("SELECT payload FROM outbox ORDER BY seq")
        else:
            rows = self.conn.execute("SELECT payload FROM outbox WHERE stream = ? ORDER BY seq", [stream])
        return [json.loads(r[0]) for r in rows.fetchall()]


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
