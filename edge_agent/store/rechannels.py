"""Channel raises that outlive a restart: officers' re-channel requests waiting for two
approvals, and the channels the RAU raised for a declaration or a plate."""

from __future__ import annotations

from typing import Any

from edge_agent.store.database import Database


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

    def rau_raises(self) -> dict[str, tuple[str, str]]:
        """key (ref:REFERENCE or plate:PLATE) -> (channel, reason)."""
        return {r[0]: (r[1], r[2]) for r in self.conn.execute("SELECT key, channel, reason FROM rau_raises")}

    def save_rau_raise(self, key: str, channel: str, reason: str, command_id: str, at: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO rau_raises (key, channel, reason, command_id, at) VALUES (?, ?, ?, ?, ?)",
            [key, channel, reason, command_id, at],
        )
