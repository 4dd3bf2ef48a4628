"""Crossings and what was decided about them: assessments, hits, gate commands, control acts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edge_agent.models import Assessment
from edge_agent.store.database import Database, iso

_CROSSING_COLUMNS = ("id", "lane", "started_at", "ended_at", "phase", "outcome", "tractor_plate",
                     "trailer_plate", "reference", "measured_kg", "channel")
# A crossing row is rewritten as the truck moves on; when it started never changes.
_SAVE_CROSSING = (
    f"INSERT INTO crossings ({', '.join(_CROSSING_COLUMNS)}) VALUES ({', '.join('?' * len(_CROSSING_COLUMNS))})"
    " ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CROSSING_COLUMNS if c not in ("id", "started_at"))
)


class Crossings(Database):
    # ------------------------------------------------------------------ writes (the core)

    def save_crossing(self, row: dict[str, Any]) -> None:
        """Insert or update a crossing; `started_at` is kept from the first save."""
        self.conn.execute(_SAVE_CROSSING, [row.get(c, "") if c != "measured_kg" else row.get(c)
                                           for c in _CROSSING_COLUMNS])

    def set_crossing_channel(self, crossing_id: str, channel: str) -> None:
        self.conn.execute("UPDATE crossings SET channel = ? WHERE id = ?", [channel, crossing_id])

    def record_assessment(self, assessment: Assessment) -> None:
        self.db.table("assessments").insert(
            {
                "id": assessment.id,
                "crossing_id": assessment.crossing_id,
                "lane": assessment.lane,
                "reference": assessment.reference,
                "channel": assessment.channel,
                "random_selected": int(assessment.random_selected),
                "deviation_kg": assessment.deviation_kg,
                "deviation_pct": assessment.deviation_pct,
                "offline": int(assessment.offline),
                "indicator_set": assessment.indicator_set,
                "at": iso(assessment.at),
                "body": assessment.model_dump_json(),
            }
        )
        self.db.table("hits").insert_all(
            {
                "assessment_id": assessment.id,
                "crossing_id": assessment.crossing_id,
                "indicator_id": hit.indicator_id,
                "level": hit.level,
                "channel": hit.channel,
                "at": iso(assessment.at),
            }
            for hit in assessment.hits
        )

    def record_control_act(self, row: dict[str, Any]) -> None:
        """One control act: id, crossing_id, lane, result, user, at, body (JSON)."""
        self.db.table("control_acts").insert(row)

    # ------------------------------------------------------------------ reads

    def crossing_lane(self, crossing_id: str) -> str | None:
        """The lane a crossing belongs to, None for an unknown crossing."""
        row = self._one("SELECT lane FROM crossings WHERE id = ?", [crossing_id])
        return row[0] if row else None

    def crossings(self, limit: int = 50, lane: str | None = None) -> list[dict[str, Any]]:
        """The newest crossings first, of one lane or all."""
        where, args = ("WHERE lane = ?", [lane]) if lane else ("", [])
        return self._dicts(f"SELECT * FROM crossings {where} ORDER BY started_at DESC LIMIT ?", [*args, limit])

    def crossings_per_lane(self) -> dict[str, int]:
        return {r["lane"]: r["n"] for r in self._dicts("SELECT lane, count(*) AS n FROM crossings GROUP BY lane")}

    def open_crossings(self) -> list[dict[str, Any]]:
        """Crossings begun and never ended: after a crash, the ones it cut."""
        return self._dicts("SELECT * FROM crossings WHERE ended_at = '' ORDER BY started_at")

    def control_act_of(self, crossing_id: str) -> str:
        """The id of the newest control act recorded for a crossing, "" if none."""
        row = self._one("SELECT id FROM control_acts WHERE crossing_id = ? ORDER BY at DESC LIMIT 1", [crossing_id])
        return row[0] if row else ""

    def latest_assessment(self, crossing_id: str) -> dict[str, Any] | None:
        """The newest assessment of a crossing: channel, random_selected, reference ..."""
        rows = self._dicts("SELECT * FROM assessments WHERE crossing_id = ? ORDER BY id DESC LIMIT 1", [crossing_id])
        return rows[0] if rows else None

    def hits_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM hits WHERE crossing_id = ?", [crossing_id])

    def commands_for(self, crossing_id: str) -> list[dict[str, Any]]:
        return self._dicts("SELECT kind, body FROM commands WHERE crossing_id = ? ORDER BY id", [crossing_id])

    def control_acts_of_lane(self, lane: str, limit: int = 5) -> list[dict[str, Any]]:
        return self._dicts("SELECT id, crossing_id, result, user, at, body FROM control_acts WHERE lane = ?"
                           " ORDER BY id DESC LIMIT ?", [lane, limit])

    # ------------------------------------------------------------------ the rules of a decision's time

    def rules_went_in_force(self, digest: str, sources: list[dict[str, Any]], at: datetime) -> bool:
        """Record a composition coming into force (closing the one before); False if unchanged."""
        current = self._one("SELECT seq, digest FROM rules_in_force WHERE to_at = '' ORDER BY seq DESC LIMIT 1")
        if current is not None and current[1] == digest:
            return False
        if current is not None:
            self.conn.execute("UPDATE rules_in_force SET to_at = ? WHERE seq = ?", [iso(at), current[0]])
        self.conn.execute("INSERT INTO rules_in_force (digest, sources, from_at) VALUES (?, ?, ?)",
                          [digest, json.dumps(sources, separators=(",", ":")), iso(at)])
        return True

    def rules_in_force_at(self, at: datetime) -> tuple[str, list[dict[str, Any]]] | None:
        """(digest, sources) of the composition in force at `at`, if one was recorded."""
        row = self._one("SELECT digest, sources FROM rules_in_force WHERE from_at <= ?"
                        " AND (to_at = '' OR to_at > ?) ORDER BY seq DESC LIMIT 1", [iso(at), iso(at)])
        return (row[0], json.loads(row[1])) if row else None

    # ------------------------------------------------------------------ figures (status, stats, /metrics)

    def channel_counts(self) -> dict[str, int]:
        """Assessments stored, by channel."""
        return {r["channel"]: r["n"]
                for r in self._dicts("SELECT channel, count(*) AS n FROM assessments GROUP BY channel")}

    def hit_counts(self) -> list[tuple[str, str, int]]:
        """(indicator, level, hits stored)."""
        return [(r[0], r[1], r[2]) for r in
                self.conn.execute("SELECT indicator_id, level, count(*) FROM hits GROUP BY indicator_id, level")]

    def control_act_counts(self) -> dict[str, int]:
        """Control acts stored, by result (positive, negative)."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT result, count(*) FROM control_acts GROUP BY result")}

    def all_hits(self) -> list[dict[str, Any]]:
        """Every hit (indicator, level, crossing, assessment): the hit rates' input."""
        return self._dicts("SELECT indicator_id, level, crossing_id, assessment_id FROM hits")

    def all_assessment_channels(self) -> list[dict[str, Any]]:
        """Every assessment's channel and random_selected: the channel rates' input."""
        return self._dicts("SELECT channel, random_selected FROM assessments")

    def all_control_results(self) -> list[dict[str, Any]]:
        """Every control act's crossing and result: the hit rates' other input."""
        return self._dicts("SELECT crossing_id, result FROM control_acts")
