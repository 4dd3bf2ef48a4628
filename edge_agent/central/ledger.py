"""The central hub's own SQLite store: every site's events, once each.

Idempotent by construction: the event id (unique, sortable, made at the site) is the
primary key, so a QoS 1 duplicate or a resend after a restart is an ignored insert. A
batch is committed before any of its acknowledgements is published, so "acknowledged"
always means "in this database".
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_site_stream ON events (site, stream);
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT '',
    state_at TEXT NOT NULL DEFAULT '',
    health TEXT NOT NULL DEFAULT '',
    health_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS routed (
    reference TEXT NOT NULL,
    version INTEGER NOT NULL,
    site TEXT NOT NULL,
    routed_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (reference, version)
);
CREATE TABLE IF NOT EXISTS rejections (
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
"""


@dataclass
class IngestResult:
    acks: dict[str, list[str]] = field(default_factory=dict)  # site -> ids to acknowledge
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (source, reason, raw)


def check_event(site: str, stream: str, payload: bytes) -> tuple[str, str] | tuple[None, str]:
    """(id, text) of a well-formed upward event, or (None, reason)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        return None, f"not JSON: {err}"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    event_id = body.get("id")
    if not isinstance(event_id, str) or not 10 <= len(event_id) <= 64:
        return None, "missing or bad id"
    if body.get("stream", stream) != stream:
        return None, f"stream {body.get('stream')!r} does not match the topic's {stream!r}"
    if body.get("site", site) != site:
        # The ACL already stops one site writing another's topics; this catches a misconfigured site.
        return None, f"site {body.get('site')!r} does not match the topic's {site!r}"
    return event_id, payload.decode("utf-8")


class Ledger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def ingest(self, batch: list[tuple[str, str, bytes]]) -> IngestResult:
        """Store a batch of (site, stream, payload) in one transaction."""
        result = IngestResult()
        now = _now()
        with self.conn:
            for site, stream, payload in batch:
                event_id, text = check_event(site, stream, payload)
                if event_id is None:
                    result.rejected.append((f"{site}/{stream}", text, payload[:2000].decode("utf-8", "replace")))
                    continue
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO events (id, site, stream, received_at, payload) VALUES (?, ?, ?, ?, ?)",
                    (event_id, site, stream, now, text),
                )
                if cur.rowcount:
                    result.stored += 1
                else:
                    result.duplicates += 1
                # Duplicates are acknowledged too: the site is waiting to hear it.
                result.acks.setdefault(site, []).append(event_id)
            for source, reason, raw in result.rejected:
                self.conn.execute("INSERT INTO rejections VALUES (?, ?, ?, ?)", (now, source, reason, raw))
        return result

    def set_status(self, site: str, state: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO sites (site, state, state_at) VALUES (?, ?, ?)"
                " ON CONFLICT(site) DO UPDATE SET state = excluded.state, state_at = excluded.state_at",
                (site, state, _now()),
            )

    def set_health(self, site: str, health: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO sites (site, health, health_at) VALUES (?, ?, ?)"
                " ON CONFLICT(site) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
                (site, health, _now()),
            )

    def record_routed(self, reference: str, version: int, site: str, body: str) -> bool:
        """True when this (reference, version) is new and must be forwarded."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO routed (reference, version, site, routed_at, body) VALUES (?, ?, ?, ?, ?)",
                (reference, version, site, _now(), body),
            )
        return bool(cur.rowcount)

    def reject(self, source: str, reason: str, raw: str) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO rejections VALUES (?, ?, ?, ?)", (_now(), source, reason, raw[:2000]))

    # ------------------------------------------------------------------ reads

    def count(self, site: str | None = None, stream: str | None = None) -> int:
        sql, args = "SELECT count(*) FROM events WHERE 1=1", []
        if site:
            sql, args = sql + " AND site = ?", [*args, site]
        if stream:
            sql, args = sql + " AND stream = ?", [*args, stream]
        return self.conn.execute(sql, args).fetchone()[0]

    def ids(self, site: str | None = None) -> list[str]:
        if site:
            return [r[0] for r in self.conn.execute("SELECT id FROM events WHERE site = ? ORDER BY id", (site,))]
        return [r[0] for r in self.conn.execute("SELECT id FROM events ORDER BY id")]

    def hits_after(self, rowid: int, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT rowid, site, payload FROM events WHERE stream = 'hit' AND rowid > ? ORDER BY rowid LIMIT ?",
            (rowid, limit),
        ).fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def latest(self, site: str, stream: str, order_by: str) -> dict[str, Any] | None:
        """The stored event of `site` and `stream` with the highest `order_by` field, or None."""
        row = self.conn.execute(
            "SELECT payload FROM events WHERE site = ? AND stream = ? ORDER BY json_extract(payload, ?) DESC LIMIT 1",
            (site, stream, f"$.{order_by}"),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def max_rowid(self) -> int:
        return self.conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]

    def sites(self) -> list[dict[str, Any]]:
        """Each site's last status and health event (parsed; {} when unreadable), by site id."""
        cur = self.conn.execute("SELECT site, state, state_at, health, health_at FROM sites ORDER BY site")
        out = []
        for site, state, state_at, health, health_at in cur.fetchall():
            try:
                parsed = json.loads(health) if health else {}
            except ValueError:
                parsed = {}
            out.append({"site": site, "state": state, "state_at": state_at, "health_at": health_at,
                        "health": parsed if isinstance(parsed, dict) else {}})
        return out

    def rejection_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM rejections").fetchone()[0]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
