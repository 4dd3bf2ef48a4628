"""Every event the core handled, every rejected input, every command it gave.

The events table is the site's own record of what happened, in order; the console's
audit anchors are events too (`audit_anchored`), which is how `audit verify` finds the
newest anchor in the customs database.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edge_agent.ids import new_id
from edge_agent.models import Rejected
from edge_agent.store.database import Database, iso

COUNTED_TABLES = ("events", "crossings", "assessments", "hits", "rejections", "outbox", "prearrivals")


class Events(Database):
    def record_event(self, event: Any) -> None:
        self.db.table("events").insert(
            {
                "id": event.id,
                "kind": event.kind,
                "lane": getattr(event, "lane", ""),
                "at": iso(event.at),
                "source": event.source,
                "body": event.model_dump_json(),
            }
        )

    def record_rejection(self, rejected: Rejected) -> None:
        self.db.table("rejections").insert(
            {
                "id": new_id(),
                "source": rejected.source,
                "reason": rejected.reason,
                "raw": rejected.raw[:4000],
                "at": iso(rejected.at),
            }
        )

    def record_command(self, command: Any, at: datetime) -> None:
        self.db.table("commands").insert(
            {
                "id": new_id(),
                "lane": command.lane,
                "crossing_id": command.crossing_id,
                "kind": command.kind,
                "body": command.model_dump_json(),
                "at": iso(at),
            }
        )

    def latest_audit_anchor(self) -> dict[str, Any] | None:
        """The body of the newest `audit_anchored` event (highest seq), if any."""
        row = self._one("SELECT body FROM events WHERE kind = 'audit_anchored'"
                        " ORDER BY json_extract(body, '$.seq') DESC LIMIT 1")
        return json.loads(row[0]) if row else None

    def reported_digest(self, key: str) -> str | None:
        """The digest last queued for the RAU under `key` (local:<id>, file:<name>), if any."""
        row = self._one("SELECT digest FROM reported WHERE key = ?", [key])
        return row[0] if row else None

    def mark_reported(self, key: str, digest: str, at: datetime) -> None:
        self.conn.execute("INSERT OR REPLACE INTO reported (key, digest, at) VALUES (?, ?, ?)", [key, digest, iso(at)])

    def counts(self) -> dict[str, int]:
        """Rows per table, for `edge-agent status`."""
        return {table: self._scalar(f"SELECT count(*) FROM {table}") for table in COUNTED_TABLES}
