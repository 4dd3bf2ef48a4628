"""A site's history written as the agent writes it: crossings in agent.db with their events,
assessments, hits, control acts and re-channels, and their evidence sealed in the chain.
Times are given, not taken from a clock, so retention can be tried at any later `now`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.evidence.manifest import EvidenceStore
from edge_agent.models import Assessment, Hit, VehicleDetected, VehicleLeft
from edge_agent.store import Store, iso

T0 = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)


class Site:
    def __init__(self, root: Path, evidence: EvidenceStore | None = None) -> None:
        self.store = Store.open(root / "agent.db")
        self.evidence = evidence or EvidenceStore(root / "evidence")
        self.n = 0

    def crossing(self, ended: datetime | None, *, lane: str = "L1", hit: bool = False, control: bool = False,
                 rechannel: bool = False, media: int = 2, raw: int = 2, started: datetime | None = None) -> str:
        """One truck: a crossing that started 2 minutes before `ended` (open when None)."""
        self.n += 1
        cid = f"X{self.n:05d}"
        started = started or (ended or T0) - timedelta(minutes=2)
        with self.store.transaction():
            self.store.record_event(VehicleDetected(lane=lane, at=started - timedelta(seconds=1), source="loop"))
            self.store.save_crossing({"id": cid, "lane": lane, "started_at": iso(started),
                                      "ended_at": iso(ended) if ended else "", "phase": "idle",
                                      "channel": "red" if hit else "green"})
            hits = [Hit(indicator_id="IND-1", channel="red")] if hit else []
            self.store.record_assessment(Assessment(crossing_id=cid, lane=lane, channel="red" if hit else "green",
                                                    hits=hits, at=started + timedelta(seconds=30)))
            if control:
                self.store.record_control_act({"id": f"CA{self.n}", "crossing_id": cid, "lane": lane,
                                               "result": "positive", "user": "olga",
                                               "at": iso(started + timedelta(seconds=60)), "body": "{}"})
            if rechannel:
                self.store.save_rechannel({"id": f"R{self.n}", "crossing_id": cid, "lane": lane,
                                           "from_channel": "green", "to_channel": "red", "status": "applied"})
            if ended:
                self.store.record_event(VehicleLeft(lane=lane, at=ended - timedelta(milliseconds=5), source="loop"))
        for i in range(media):
            self.evidence.add_file(cid, "snapshot", f"arrival_cam{i}.jpg", b"\xff\xd8" + cid.encode() * 50)
        for i in range(raw):
            self.evidence.add_bytes(cid, "scale" if i % 2 == 0 else "anpr", f"frames{i}.hex", cid.encode() * 10)
        if ended:
            self.evidence.seal(cid)
        return cid

    def kept(self, cid: str) -> bool:
        """Whether any row of the crossing is still in the database."""
        return (self.store.crossing_lane(cid) is not None or self.store.latest_assessment(cid) is not None
                or bool(self.store.hits_for(cid)) or bool(self.store.commands_for(cid))
                or bool(self.store.control_act_of(cid)))

    def events_of_lane(self, lane: str = "L1") -> int:
        with sqlite3.connect(self.store.path) as conn:  # a test may look at every row
            return conn.execute("SELECT count(*) FROM events WHERE lane = ?", [lane]).fetchone()[0]

    def files_of(self, cid: str) -> list[str]:
        folder = self.evidence.root / "crossings" / cid
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
