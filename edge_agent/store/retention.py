"""Holds on crossings, and what retention reads and deletes of the agent's database.

A crossing with hits, control acts or re-channels is held without any row here (the
automatic hold is derived by query, so the core writes nothing for it). A `holds` row is
a manual hold (`state = 'held'`) or the release of either kind (`'released'`). Which
crossing is due when is decided by edge_agent/storage/retention.py from the states read
here; the deletes are bounded steps (the core runs them in its tick, docs/storage.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge_agent.store.database import Database, iso

_CHUNK = 500
# One crossing as retention sees it: its times, whether it is flagged, its hold row.
_STATE = """SELECT c.id, c.lane, c.started_at, c.ended_at,
    (EXISTS (SELECT 1 FROM hits h WHERE h.crossing_id = c.id)
     OR EXISTS (SELECT 1 FROM control_acts a WHERE a.crossing_id = c.id)
     OR EXISTS (SELECT 1 FROM rechannels r WHERE r.crossing_id = c.id)) AS flagged,
    coalesce(k.state, '') AS hold, coalesce(k.released_at, '') AS released_at
    FROM crossings c LEFT JOIN holds k ON k.crossing_id = c.id"""
_FLAGGED = """SELECT crossing_id FROM hits WHERE crossing_id != ''
    UNION SELECT crossing_id FROM control_acts WHERE crossing_id != ''
    UNION SELECT crossing_id FROM rechannels WHERE crossing_id != ''"""
# Rows of a crossing by table, deleted before the crossing's own row (which goes last, so
# a crossing cut in the middle of its purge is found again by the next step).
_BY_CROSSING = ("commands", "hits", "assessments", "control_acts", "rechannels", "holds")


class Retention(Database):
    # ------------------------------------------------------------------ holds

    def place_hold(self, crossing_id: str, by: str, reason: str, at: datetime) -> None:
        """A manual hold: the crossing is kept, whatever its class, until released."""
        self.conn.execute(
            "INSERT INTO holds (crossing_id, state, placed_at, placed_by, placed_reason) VALUES (?, 'held', ?, ?, ?)"
            " ON CONFLICT(crossing_id) DO UPDATE SET state = 'held', placed_at = excluded.placed_at,"
            " placed_by = excluded.placed_by, placed_reason = excluded.placed_reason,"
            " released_at = '', released_by = '', released_reason = ''",
            [crossing_id, iso(at), by, reason])

    def release_hold(self, crossing_id: str, by: str, reason: str, at: datetime) -> None:
        """Release a manual or automatic hold: the crossing's periods run from now."""
        self.conn.execute(
            "INSERT INTO holds (crossing_id, state, released_at, released_by, released_reason)"
            " VALUES (?, 'released', ?, ?, ?) ON CONFLICT(crossing_id) DO UPDATE SET state = 'released',"
            " released_at = excluded.released_at, released_by = excluded.released_by,"
            " released_reason = excluded.released_reason",
            [crossing_id, iso(at), by, reason])

    def hold_of(self, crossing_id: str) -> dict[str, Any] | None:
        """The crossing's hold row (manual hold or release), None without one."""
        rows = self._dicts("SELECT * FROM holds WHERE crossing_id = ?", [crossing_id])
        return rows[0] if rows else None

    def flagged_reasons(self, crossing_id: str) -> list[str]:
        """Why a crossing is held automatically: "hit", "control_act", "rechannel" (none: not flagged)."""
        out = []
        for table, why in (("hits", "hit"), ("control_acts", "control_act"), ("rechannels", "rechannel")):
            if self._one(f"SELECT 1 FROM {table} WHERE crossing_id = ? LIMIT 1", [crossing_id]):
                out.append(why)
        return out

    def on_hold(self, crossing_id: str) -> bool:
        """Held by hand, or flagged (hits, control acts, re-channels) and not released."""
        row = self.hold_of(crossing_id)
        state = row["state"] if row else ""
        return state == "held" or (state != "released" and bool(self.flagged_reasons(crossing_id)))

    def holds(self, limit: int = 100) -> list[dict[str, Any]]:
        """Manual holds and releases, the newest change first."""
        return self._dicts("SELECT * FROM holds ORDER BY max(placed_at, released_at) DESC LIMIT ?", [limit])

    def held_count(self) -> int:
        """Crossings on hold: flagged and not released, or held by hand."""
        return self._scalar(
            f"SELECT count(*) FROM (SELECT crossing_id FROM ({_FLAGGED}) WHERE crossing_id NOT IN"
            " (SELECT crossing_id FROM holds WHERE state = 'released')"
            " UNION SELECT crossing_id FROM holds WHERE state = 'held')")

    # ------------------------------------------------------------------ retention reads

    def retention_states(self, crossing_ids: list[str]) -> list[dict[str, Any]]:
        """Retention's view of the given crossings (unknown ids are left out)."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(crossing_ids), _CHUNK):
            chunk = crossing_ids[start : start + _CHUNK]
            out += self._dicts(f"{_STATE} WHERE c.id IN ({','.join('?' * len(chunk))})", chunk)
        return out

    def retention_candidates(self, lane: str, after_started_at: str, before: datetime,
                             limit: int = 100) -> list[dict[str, Any]]:
        """A lane's crossings started after `after_started_at` and before `before`, oldest
        first (the (lane, started_at) index): the next ones whose records may be due."""
        return self._dicts(f"{_STATE} WHERE c.lane = ? AND c.started_at > ? AND c.started_at < ?"
                           " ORDER BY c.started_at LIMIT ?", [lane, after_started_at, iso(before), limit])

    def lanes_with_crossings(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT lane FROM crossings").fetchall()]

    def previous_crossing_end(self, lane: str, started_at: str) -> str:
        """When the lane's crossing before this one ended ("" if none is kept)."""
        row = self._one("SELECT ended_at FROM crossings WHERE lane = ? AND started_at < ?"
                        " ORDER BY started_at DESC LIMIT 1", [lane, started_at])
        return row[0] if row else ""

    # ------------------------------------------------------------------ retention deletes (the core)

    def purge_unlinked_records(self, before: str, max_rows: int) -> int:
        """Delete up to `max_rows` rows of personal data no kept crossing points to: pre-arrival
        records whose truck's crossing is gone, or that expired before `before`; the events
        that brought them, once the record is gone and the event is older than `before`;
        rejected inputs (a garbled read may still carry a plate) older than `before`.
        In the caller's transaction; returns how many went."""
        deleted = self.conn.execute(
            "DELETE FROM prearrivals WHERE rowid IN (SELECT rowid FROM prearrivals WHERE"
            " (status = 'arrived' AND crossing_id NOT IN (SELECT id FROM crossings))"
            " OR (status != 'arrived' AND expires_at != '' AND expires_at < ?) LIMIT ?)",
            [before, max_rows]).rowcount
        if deleted < max_rows:
            deleted += self.conn.execute(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE lane = '' AND at < ?"
                " AND kind = 'prearrival' AND json_extract(body, '$.record.reference') NOT IN"
                " (SELECT reference FROM prearrivals) LIMIT ?)", [before, max_rows - deleted]).rowcount
        if deleted < max_rows:
            deleted += self.conn.execute(
                "DELETE FROM rejections WHERE rowid IN (SELECT rowid FROM rejections WHERE at < ? LIMIT ?)",
                [before, max_rows - deleted]).rowcount
        return deleted

    def purge_crossing_records(self, crossing_id: str, lane: str, events_after: str, events_to: str,
                               max_rows: int) -> tuple[int, bool]:
        """Delete up to `max_rows` rows of a crossing: the lane's events in
        (`events_after`, `events_to`], then its commands, hits, assessments, control acts,
        re-channels and hold row, and last the crossing itself. Returns (rows deleted,
        whether the crossing is gone). In the caller's transaction."""
        deleted = self.conn.execute(
            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE lane = ? AND at > ? AND at <= ?"
            " LIMIT ?)", [lane, events_after, events_to, max_rows]).rowcount
        for table in _BY_CROSSING:
            if deleted >= max_rows:
                return deleted, False
            deleted += self.conn.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE crossing_id = ? LIMIT ?)",
                [crossing_id, max_rows - deleted]).rowcount
        if deleted >= max_rows:
            return deleted, False
        deleted += self.conn.execute("DELETE FROM crossings WHERE id = ?", [crossing_id]).rowcount
        return deleted, True
