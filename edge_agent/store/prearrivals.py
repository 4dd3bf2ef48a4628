"""SEED pre-arrival records as this site received them, and what became of each."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.models import PreArrival
from edge_agent.plates.normal_form import normalize_plate
from edge_agent.store.database import Database, iso


class PreArrivals(Database):
    def upsert_prearrival(self, record: PreArrival) -> str:
        """Store a pre-arrival record; returns new, updated, duplicate or outdated."""
        row = self._one("SELECT version, status FROM prearrivals WHERE reference = ?", [record.reference])
        if row is not None:
            version, status = row
            if record.version < version:
                return "outdated"
            if record.version == version:
                return "duplicate"
            if status != "pending":
                return "outdated"  # the truck has already arrived: the lane holds what it saw
        self.db.table("prearrivals").upsert(
            {
                "reference": record.reference,
                "version": record.version,
                "tractor_plate": normalize_plate(record.tractor_plate),
                "trailer_plate": normalize_plate(record.trailer_plate) if record.trailer_plate else "",
                "status": "pending",
                "crossing_id": "",
                "received_at": iso(datetime.now(UTC)),
                "expires_at": iso(record.expires_at) if record.expires_at else "",
                "body": record.model_dump_json(),
            },
            pk="reference",
        )
        return "updated" if row is not None else "new"

    def mark_prearrival(self, reference: str, status: str, crossing_id: str = "") -> None:
        """pending -> arrived (with the crossing) or expired."""
        self.conn.execute(
            "UPDATE prearrivals SET status = ?, crossing_id = ? WHERE reference = ?",
            [status, crossing_id, reference],
        )

    def prearrival(self, reference: str) -> PreArrival | None:
        row = self._one("SELECT body FROM prearrivals WHERE reference = ?", [reference])
        return PreArrival.model_validate_json(row[0]) if row else None

    def pending_prearrivals(self) -> list[PreArrival]:
        rows = self.conn.execute("SELECT body FROM prearrivals WHERE status = 'pending'").fetchall()
        return [PreArrival.model_validate_json(r[0]) for r in rows]

    def pending_prearrival_count(self) -> int:
        return self._scalar("SELECT count(*) FROM prearrivals WHERE status = 'pending'")
