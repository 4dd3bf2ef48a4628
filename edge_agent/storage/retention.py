"""What retention deletes, and why: pure functions of the crossings, their files and a clock.

Classes and their periods (`[retention]`, days, counted from the crossing's end, or from
the release of its hold when that is later):

    media     pictures and clips of crossings with no hit, control act or re-channel   media_days
    raw       raw device payloads (scale frames, ANPR payload files) of such crossings raw_days
    records   the database rows of such crossings (crossing, assessment, commands, the
              lane's events within the crossing)                                        records_days
    flagged   everything of crossings with hits, control acts or re-channels, once their
              hold is released                                                          flagged_days

A crossing still open is never touched; a crossing on hold (flagged and not released,
or held by hand) keeps every file and row. Acknowledged outbox rows are deleted at the
acknowledgement (period 0); the console's audit log is never purged.

Past the disk budget's high-water mark the oldest media not on hold go ahead of their
period (reason "budget"), down to `BUDGET_TARGET_PCT` points under the mark so the
worker does not run for every new picture.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from edge_agent.evidence.classes import file_class

DataClass = Literal["media", "raw", "records", "flagged"]
BUDGET_TARGET_PCT = 10.0  # below the high-water mark, where a budget purge stops


@dataclass(frozen=True)
class Periods:
    media_days: int = 30
    raw_days: int = 30
    records_days: int = 90
    flagged_days: int = 1825

    @classmethod
    def of(cls, config: object) -> Periods:
        """From the `[retention]` section (any object with the four fields)."""
        return cls(*(int(getattr(config, f)) for f in ("media_days", "raw_days", "records_days", "flagged_days")))


@dataclass(frozen=True)
class CrossingState:
    """A crossing as retention sees it (store.retention_states)."""

    id: str
    lane: str
    started_at: datetime
    ended_at: datetime | None  # None while open
    flagged: bool  # hits, control acts or re-channels
    hold: str = ""  # "" (no row), "held" (manual), "released"
    released_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict) -> CrossingState:
        return cls(id=row["id"], lane=row["lane"], started_at=_time(row["started_at"]) or datetime.min,
                   ended_at=_time(row["ended_at"]), flagged=bool(row["flagged"]), hold=row["hold"] or "",
                   released_at=_time(row["released_at"]))

    @property
    def held(self) -> bool:
        return self.hold == "held" or (self.flagged and self.hold != "released")

    @property
    def since(self) -> datetime | None:
        """Where the periods start: the end, or the release when later; None while open."""
        if self.ended_at is None:
            return None
        if self.released_at is not None and self.released_at > self.ended_at:
            return self.released_at
        return self.ended_at


@dataclass(frozen=True)
class EvidenceFile:
    crossing_id: str
    path: str  # relative to the evidence root
    kind: str
    size: int


@dataclass(frozen=True)
class Purge:
    crossing_id: str
    path: str
    data_class: DataClass
    reason: str  # "period" or "budget"
    size: int


def class_of(state: CrossingState, file_or_records: EvidenceFile | None) -> DataClass:
    """The class that governs a file (None: the crossing's database rows)."""
    if state.flagged:
        return "flagged"
    if file_or_records is None:
        return "records"
    return file_class(file_or_records.kind, file_or_records.path.rsplit("/", 1)[-1])


def due_at(state: CrossingState, data_class: DataClass, periods: Periods) -> datetime | None:
    """When a class of this crossing may go; None while it is open or on hold."""
    since = state.since
    if since is None or state.held:
        return None
    days = {"media": periods.media_days, "raw": periods.raw_days, "records": periods.records_days,
            "flagged": periods.flagged_days}[data_class]
    return since + timedelta(days=days)


def plan_purges(crossings: dict[str, CrossingState], files: Iterable[EvidenceFile], periods: Periods,
                now: datetime, *, media_bytes: int = 0, high_water_bytes: int = 0,
                cap_bytes: int = 0) -> list[Purge]:
    """The files to delete now: every file past its class's period, then, past the
    high-water mark of the media budget, the oldest media not on hold (by crossing end)
    until the media bytes are `BUDGET_TARGET_PCT` of the cap under the mark. Files of a
    crossing the database does not know are left alone (nothing says what they are)."""
    out: list[Purge] = []
    early: list[tuple[datetime, str, EvidenceFile]] = []
    left = media_bytes
    for f in files:
        state = crossings.get(f.crossing_id)
        if state is None:
            continue
        klass = class_of(state, f)
        due = due_at(state, klass, periods)
        if due is None:
            continue
        is_media = klass == "media" or (klass == "flagged" and file_class(f.kind, f.path) == "media")
        if due <= now:
            out.append(Purge(f.crossing_id, f.path, klass, "period", f.size))
            if is_media:
                left -= f.size
        elif is_media and state.since is not None:
            early.append((state.since, f.path, f))
    if high_water_bytes and left >= high_water_bytes:
        target = high_water_bytes - int(cap_bytes * BUDGET_TARGET_PCT / 100)
        for _, _, f in sorted(early, key=lambda item: (item[0], item[1])):
            if left <= target:
                break
            out.append(Purge(f.crossing_id, f.path, class_of(crossings[f.crossing_id], f), "budget", f.size))
            left -= f.size
    return out


def records_due(state: CrossingState, periods: Periods, now: datetime) -> bool:
    """Whether the crossing's database rows may go now."""
    due = due_at(state, class_of(state, None), periods)
    return due is not None and due <= now


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
