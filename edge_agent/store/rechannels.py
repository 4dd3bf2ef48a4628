"""Channel raises that outlive a restart: officers' re-channel requests waiting for two
approvals, and the channels the RAU raised for a declaration or a plate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.store.database import Database, iso


@dataclass(frozen=True)
class RauRaise:
    """A channel the RAU raised for a declaration or a plate, until its crossing or expiry."""

    channel: str
    reason: str
    command_id: str
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class Rechannels(Database):
    # ------------------------------------------------------------------ officers' requests

    def save_rechannel(self, row: dict[str, Any]) -> None:
        """Insert or update one re-channel request (the console's two-approval workflow)."""
        self.db.table("rechannels").upsert(row, pk="id")

    def rechannel(self, request_id: str) -> dict[str, Any] | None:
        rows = self._dicts("SELECT * FROM rechannels WHERE id = ?", [request_id])
        return rows[0] if rows else None

    def pending_rechannels(self, lane: str | None = None) -> list[dict[str, Any]]:
        where, args = ("AND lane = ?", [lane]) if lane else ("", [])
        return self._dicts(f"SELECT * FROM rechannels WHERE status = 'pending' {where} ORDER BY id DESC", args)

    def decided_rechannels(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM rechannels WHERE status != 'pending' ORDER BY id DESC LIMIT ?", [limit])

    # ------------------------------------------------------------------ the RAU's raises

    def rau_raises(self) -> dict[str, RauRaise]:
        """key (ref:REFERENCE or plate:PLATE) -> the raise filed under it."""
        return {r[0]: RauRaise(r[1], r[2], r[3], datetime.fromisoformat(r[4]) if r[4] else None)
                for r in self.conn.execute("SELECT key, channel, reason, command_id, expires_at FROM rau_raises")}

    def save_rau_raise(self, key: str, found: RauRaise, at: datetime) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO rau_raises (key, channel, reason, command_id, at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [key, found.channel, found.reason, found.command_id, iso(at),
             iso(found.expires_at) if found.expires_at else ""],
        )

    def delete_rau_raises(self, keys: list[str]) -> int:
        gone = 0
        for key in keys:
            gone += self.conn.execute("DELETE FROM rau_raises WHERE key = ?", [key]).rowcount
        return gone
