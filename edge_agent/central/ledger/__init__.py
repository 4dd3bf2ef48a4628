"""The RAU's ledger: every site's events once each, the sites' last word, the routed SEED
records, the alerts' delivery log. One interface, two back-ends chosen by where it lives:

    Ledger("central.db")                                  # SQLite, the embedded default
    Ledger("sqlite:///central.db")                        # the same, as a URL
    Ledger("postgresql://rau@db.example/ledger")          # PostgreSQL, for a whole country
    Ledger("postgresql:///ledger?host=/run/postgresql")   # ... over a Unix socket

Like `pathlib.Path`, which hands back a `PosixPath`, `Ledger(...)` hands back the back-end
its target names (`SqliteLedger`, `PostgresLedger`); code that only reads and writes
through the methods below never knows which.

Idempotent by construction: the event id (unique, sortable, made at the site) is the key,
so a QoS 1 duplicate or a resend after a restart is an ignored insert. A batch is
committed before any of its acknowledgements is published, so "acknowledged" always
means "in this ledger". Each back-end applies its versioned migrations when opened.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from edge_agent.errors import AgentError
from edge_agent.ids import encode, timestamp_ms

# An id's own time decides its month partition (PostgreSQL) so that one id always lands
# in one partition; ids that carry no plausible time (hand-made, foreign) share the
# "undated" partition, whose time is this.
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)
_DATED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
_DATED_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)
_CROCKFORD = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


class LedgerError(AgentError, RuntimeError):
    """The ledger cannot be opened, migrated or reached."""


class LedgerBusy(LedgerError):
    """Another hub worker already serves this ledger, and the back-end allows only one."""


@dataclass
class IngestResult:
    acks: dict[str, list[str]] = field(default_factory=dict)  # site -> ids to acknowledge
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (source, reason, raw)
    alerts: int = 0  # deliveries planned for newly stored hits


@dataclass(frozen=True)
class Delivery:
    """One alert to send: a hit's notify target resolved to one address on one channel."""

    hit_id: str
    site: str
    indicator_id: str
    target: str  # the name the indicator gave (`notify`)
    channel: str  # "email" | "sms" | "none" (a target no configuration resolves)
    recipient: str
    subject: str
    body: str
    status: str = "pending"  # "failed" at once for a target nobody resolves
    error: str = ""


@dataclass(frozen=True)
class DeliveryRow:
    """A line of the delivery log, as `central alerts` shows it and the dispatcher works it."""

    id: int
    hit_id: str
    site: str
    indicator_id: str
    target: str
    channel: str
    recipient: str
    subject: str
    body: str
    status: str  # pending | sent | failed | suppressed
    attempts: int
    error: str
    created_at: str
    sent_at: str


@dataclass(frozen=True)
class CrossingQuery:
    """What the RAU console searches crossings by (all given fields must match)."""

    plate: str = ""  # tractor or trailer
    reference: str = ""
    indicator_id: str = ""  # among the crossing's hits
    party: str = ""  # in its routed pre-arrival record's consignor or consignee name, any case
    channel: str = ""
    site: str = ""
    since: datetime | None = None  # the crossing ended at or after
    until: datetime | None = None  # ... and before
    limit: int = 100


# How long after a crossing began its events may be made (a control act written up the
# next day, the end of a crossing held overnight): the window `crossing_events` reads.
CROSSING_SPAN = timedelta(days=7)


# (site, hit payload, the routed SEED record of its reference or None, the stored crossing or None)
AlertPlanner = Callable[[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None], list[Delivery]]


def made_at(event_id: str) -> datetime:
    """The time an id says it was made (ULID layout, ids.py), or UNDATED."""
    if not _CROCKFORD.match(event_id):
        return UNDATED
    when = datetime.fromtimestamp(timestamp_ms(event_id) / 1000, UTC)
    return when if _DATED_FROM <= when < _DATED_UNTIL else UNDATED


def check_event(site: str, stream: str, payload: bytes) -> tuple[str, str] | tuple[None, str]:
    """(id, text) of a well-formed upward event, or (None, reason)."""
    checked = parse_event(site, stream, payload)
    if checked[0] is None:
        return None, checked[1]
    return checked[0], payload.decode("utf-8")


def parse_event(site: str, stream: str, payload: bytes) -> tuple[str, dict[str, Any]] | tuple[None, str]:
    """(id, body) of a well-formed upward event, or (None, reason)."""
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
    return event_id, body


def indexed_fields(body: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """(tractor plate, trailer plate, reference, indicator id) of an event, for the RAU's lookups."""

    def text(key: str) -> str | None:
        value = body.get(key)
        return value if isinstance(value, str) and value else None

    return text("tractor_plate") or text("plate"), text("trailer_plate"), text("reference"), text("indicator_id")


def describe(target: str | Path) -> str:
    """The ledger's target for a log line: a path, or a URL without its password."""
    text = str(target)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return text


def is_postgres(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def sqlite_path(target: str | Path) -> Path:
    """The file a SQLite target names: a path, or `sqlite:///relative` / `sqlite:////absolute`."""
    text = str(target)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///"):])
    if "://" in text:
        raise LedgerError(f"unknown ledger URL {describe(text)!r}: use a file path, sqlite:///PATH or postgresql://...")
    return Path(text)


class Ledger(ABC):
    """The ledger's interface; `Ledger(target)` opens the back-end the target names."""

    url: str

    def __new__(cls, target: str | Path = "central.db", *args: Any, **kwargs: Any) -> Ledger:
        if cls is Ledger:
            if is_postgres(target):
                from edge_agent.central.ledger.postgres import PostgresLedger

                cls = PostgresLedger
            else:
                cls = SqliteLedger
        return super().__new__(cls)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def schema_version(self) -> int: ...

    # ------------------------------------------------------------------ the hub's writes

    @abstractmethod
    def ingest(self, batch: list[tuple[str, str, bytes]], plan: AlertPlanner | None = None) -> IngestResult:
        """Store a batch of (site, stream, payload) in one transaction; with `plan`, the
        alerts of each stored hit that names notify targets go into the delivery log in
        that same transaction (once per hit, however often it arrives)."""

    @abstractmethod
    def set_status(self, site: str, state: str) -> None: ...

    @abstractmethod
    def set_health(self, site: str, health: str) -> None: ...

    @abstractmethod
    def record_routed(self, reference: str, version: int, site: str, body: str) -> bool:
        """True when this (reference, version) is new; it waits to be published (`routed_pending`)."""

    @abstractmethod
    def routed_pending(self, limit: int = 500) -> list[tuple[str, int, str, str]]:
        """(reference, version, site, body) routed but not yet published, oldest first."""

    @abstractmethod
    def mark_routed_published(self, keys: list[tuple[str, int]]) -> None: ...

    @abstractmethod
    def queue_bundle(self, sha256: str, topic: str, retain: bool, label: str, payload: bytes) -> bool:
        """Keep a signed bundle for the lease holder to publish; False when it was released before."""

    @abstractmethod
    def bundles_pending(self) -> list[tuple[int, str, bool, str, bytes]]:
        """(id, topic, retain, label, payload) of released bundles not yet published, oldest first."""

    @abstractmethod
    def mark_bundle_published(self, bundle_id: int) -> None: ...

    @abstractmethod
    def bundles(self, limit: int = 20) -> list[tuple[str, str, str, str]]:
        """(label, topic, queued at, published at or '') of released bundles, newest first."""

    @abstractmethod
    def queue_command(self, command_id: str, site: str, body: str, by: str) -> bool:
        """Keep a downward command (the site's `down/command` JSON) for the lease holder to
        publish; `by` is who asked (the RAU console's user). False when the id was queued before."""

    @abstractmethod
    def commands_pending(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """(id, site, body) of queued commands not yet published, oldest first."""

    @abstractmethod
    def mark_command_published(self, command_id: str) -> None: ...

    @abstractmethod
    def commands(self, site: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Queued commands, newest first: id, site, by, queued_at, published_at ('' while
        pending) and the command's own fields."""

    @abstractmethod
    def reject(self, source: str, reason: str, raw: str) -> None: ...

    @abstractmethod
    def serving(self, holder: str) -> AbstractContextManager[None]:
        """Held while a hub worker serves: refuses a second worker where the back-end
        cannot share (`LedgerBusy`), admits any number where it can."""

    @abstractmethod
    def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the named lease for `holder`; False while another holds it."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None: ...

    @abstractmethod
    def lease_holder(self, name: str) -> str | None:
        """Who holds the named lease now, None when nobody does (or it ran out)."""

    # ------------------------------------------------------------------ evidence on demand (docs/evidence.md)

    @abstractmethod
    def add_evidence_request(self, request_id: str, site: str, crossing_id: str, by: str) -> None:
        """Record that `by` asked the site for a crossing's evidence (the command goes as well)."""

    @abstractmethod
    def set_evidence_request(self, request_id: str, state: str, detail: str = "", proof: str = "") -> None:
        """The site's answer to a request: `received` with its chain proof (JSON {"chain", "head"})
        or `refused`/`unknown` with why."""

    @abstractmethod
    def reopen_evidence_requests(self, site: str) -> int:
        """Mark for publishing again the commands of `site`'s unfinished evidence requests
        (the proof never came, or a file is still short of chunks): a site forgets its
        requests when it restarts. Returns how many."""

    @abstractmethod
    def evidence_requests(self, site: str, crossing_id: str) -> list[dict[str, Any]]:
        """The crossing's requests, newest first: id, by, requested_at, state, detail, proof ('' or JSON)."""

    @abstractmethod
    def evidence_anchored(self, site: str, digests: list[str]) -> dict[str, int]:
        """Which of `digests` the site anchored as its evidence head: digest -> sequence."""

    @abstractmethod
    def put_evidence_file(self, site: str, crossing_id: str, entry: dict[str, Any], chunks: int, state: str,
                          detail: str = "") -> None:
        """Register (or update) a listed file of a crossing; a verified file stays verified."""

    @abstractmethod
    def set_evidence_file_state(self, site: str, sha256: str, state: str, detail: str = "") -> None: ...

    @abstractmethod
    def evidence_files(self, site: str, crossing_id: str = "", sha256: str = "") -> list[dict[str, Any]]:
        """Listed files (of a crossing, or by digest): crossing_id, sha256, path, kind, size,
        chunks (expected), have (stored), state, detail, updated_at."""

    @abstractmethod
    def store_evidence_chunk(self, site: str, sha256: str, index: int, data: bytes) -> bool:
        """Keep one chunk; False when it was stored before (chunks are idempotent)."""

    @abstractmethod
    def evidence_chunk_indexes(self, site: str, sha256: str) -> list[int]: ...

    @abstractmethod
    def evidence_content(self, site: str, sha256: str) -> bytes:
        """The file as received: its chunks in order."""

    @abstractmethod
    def drop_evidence_chunks(self, site: str, sha256: str) -> None: ...

    @abstractmethod
    def add_cctv_request(self, request_id: str, site: str, lane: str, by: str) -> None:
        """Record that `by` asked the site for a lane's latest CCTV frame."""

    @abstractmethod
    def put_cctv_snapshot(self, request_id: str, site: str, state: str, camera: str = "", taken_at: str = "",
                          data: bytes = b"", detail: str = "") -> bool:
        """The site's answer (`received` with the JPEG, or `refused`/`unavailable`); False when
        the site never had such a request, or it was answered before (the first answer stays)."""

    @abstractmethod
    def cctv_snapshots(self, site: str, limit: int = 20) -> list[dict[str, Any]]:
        """The site's snapshot requests, newest first: id, lane, by, requested_at, state, camera,
        taken_at, detail, bytes."""

    @abstractmethod
    def cctv_snapshot_data(self, site: str, request_id: str) -> bytes | None:
        """A received snapshot's JPEG, None otherwise."""

    # ------------------------------------------------------------------ alerts

    @abstractmethod
    def claim_deliveries(self, holder: str, limit: int, lease_s: float) -> list[DeliveryRow]:
        """Pending deliveries that are due, claimed for `lease_s` (another worker takes
        them over if this one dies before it reports)."""

    @abstractmethod
    def finish_delivery(self, delivery_id: int, status: str, error: str = "", retry_in_s: float | None = None) -> None:
        """Record an attempt: sent, failed for good, suppressed, or pending again in `retry_in_s`."""

    @abstractmethod
    def sent_since(self, recipient: str, window_s: float) -> int:
        """Alerts sent to `recipient` within the last `window_s` (the rate limit's count)."""

    @abstractmethod
    def deliveries(self, *, failed_only: bool = False, limit: int = 100) -> list[DeliveryRow]:
        """The delivery log, newest first."""

    @abstractmethod
    def delivery_counts(self) -> dict[str, int]: ...

    # ------------------------------------------------------------------ reads

    @abstractmethod
    def count(self, site: str | None = None, stream: str | None = None) -> int: ...

    @abstractmethod
    def ids(self, site: str | None = None) -> list[str]: ...

    @abstractmethod
    def duplicates_stored(self) -> int:
        """Ids stored more than once (must be 0: the fleet run and the tests check it)."""

    @abstractmethod
    def hits_after(self, position: int, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        """(position, site, hit) of hits stored after `position`, in order."""

    @abstractmethod
    def max_rowid(self) -> int:
        """The position of the newest stored event (`hits_after` starts after it)."""

    @abstractmethod
    def latest(self, site: str, stream: str, order_by: str) -> dict[str, Any] | None:
        """The stored event of `site` and `stream` with the highest `order_by` field, or None."""

    @abstractmethod
    def events_by(self, *, plate: str = "", reference: str = "", indicator_id: str = "",
                  limit: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        """(site, stream, payload) of the events about a plate, a reference or an indicator, newest first."""

    @abstractmethod
    def routed_record(self, reference: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def recent_hits(self, limit: int = 50, site: str = "") -> list[tuple[str, dict[str, Any]]]:
        """(site, hit) of the newest stored hits, newest first."""

    @abstractmethod
    def find_crossings(self, query: CrossingQuery) -> list[tuple[str, dict[str, Any]]]:
        """(site, crossing event) of the ended crossings that match, newest first."""

    @abstractmethod
    def crossing_events(self, site: str, crossing_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(stream, payload) of every stored event of one crossing (its hits, control act,
        re-channels, its end), oldest first."""

    @abstractmethod
    def sites(self) -> list[dict[str, Any]]:
        """Each site's last status and health event (parsed; {} when unreadable), by site id."""

    @abstractmethod
    def last_event_at(self, site: str) -> datetime | None:
        """When the newest stored event of `site` was made (its id's time), None for none."""

    # ------------------------------------------------------------------ indicator drafts (the RAU console's authoring)

    @abstractmethod
    def create_draft(self, level: str, scope: str, document: str, by: str) -> int:
        """A new indicator-set draft for one bundle slot (level, scope); returns its number."""

    @abstractmethod
    def update_draft(self, draft_id: int, document: str, by: str) -> bool:
        """Replace a draft's document; False unless it is still a draft (not yet submitted)."""

    @abstractmethod
    def submit_draft(self, draft_id: int, by: str, version: int, signed: str) -> bool:
        """Mark a draft submitted as bundle `version`, with the drafter's signed bundles (JSON);
        False unless it was a draft."""

    @abstractmethod
    def approve_draft(self, draft_id: int, by: str, signed: str) -> bool:
        """Mark a submitted draft approved, with the bundles as signed by both (JSON); False
        unless it was submitted, or its version is no longer above the slot's approved ones."""

    @abstractmethod
    def draft(self, draft_id: int) -> dict[str, Any] | None:
        """One draft: id, level, scope, document, status, version, signed, drafted_by/at,
        edited_by/at, submitted_by/at, approved_by/at ('' for what has not happened)."""

    @abstractmethod
    def drafts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Drafts newest first, as `draft` gives them."""

    @abstractmethod
    def latest_full_bundle(self, topic: str) -> bytes | None:
        """The newest full (retained) bundle released on `topic`, published or not: what a
        new draft of that set starts from when none was approved on the console."""

    @abstractmethod
    def routed_since(self, since: datetime, limit: int = 100_000) -> list[tuple[str, dict[str, Any]]]:
        """(site, record) of the newest version of each SEED record routed at or after `since`."""
    # ------------------------------------------------------------------ effectiveness (issue 16, item 4)
    # Rows for the RAU console's effectiveness page; the counting is edge_agent/hit_rates.py's
    # and central/console/effectiveness.py's. Times are the events' own (their ids').

    @abstractmethod
    def hit_crossings(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        """Each (site, indicator, level, crossing) a hit made in [since, until) names, once
        however often the crossing was re-assessed: site, indicator_id, level, crossing_id
        ('assessment:ID' for a hit outside a crossing) and made_at (the first such hit's time)."""

    @abstractmethod
    def control_outcomes(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        """Each (site, crossing) with a control act made in [since, until + CROSSING_SPAN):
        site, crossing_id, result ('positive' when any of its acts is)."""

    @abstractmethod
    def channel_counts(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        """Crossings that ended in [since, until), grouped: site, channel ('' when never
        assessed), random_selected, count."""

    @abstractmethod
    def rejection_count(self) -> int: ...

    @abstractmethod
    def size_bytes(self) -> int:
        """What the ledger takes on disk (the database or the file with its WAL)."""


def latest_event(target: str | Path, site: str, stream: str, order_by: str) -> dict[str, Any] | None:
    """Open the ledger, read one site's newest event of a stream (an anchor), close it."""
    ledger = Ledger(target)
    try:
        return ledger.latest(site, stream, order_by)
    finally:
        ledger.close()


def site_row(site: str, state: str, state_at: str, health: str, health_at: str) -> dict[str, Any]:
    try:
        parsed = json.loads(health) if health else {}
    except ValueError:
        parsed = {}
    return {"site": site, "state": state, "state_at": state_at, "health_at": health_at,
            "health": parsed if isinstance(parsed, dict) else {}}


def command_row(command_id: str, site: str, by: str, queued_at: str, published_at: str, body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {}
    fields = parsed if isinstance(parsed, dict) else {}
    return {**fields, "id": command_id, "site": site, "by": by, "queued_at": queued_at,
            "published_at": published_at or ""}


DRAFT_COLUMNS = ("id", "level", "scope", "document", "status", "version", "signed", "drafted_by", "drafted_at",
                 "edited_by", "edited_at", "submitted_by", "submitted_at", "approved_by", "approved_at")


def draft_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {k: ("" if v is None else v) for k, v in zip(DRAFT_COLUMNS, row, strict=True)}
# A site's evidence requests not yet done: the proof never came, or one of the crossing's
# files still lacks chunks. `{p}` is the back-end's placeholder; the site is given twice.
_UNFINISHED_REQUESTS = (
    "SELECT r.id FROM evidence_requests r WHERE r.site = {p} AND (r.state = 'requested' OR (r.state = 'received'"
    " AND EXISTS (SELECT 1 FROM evidence_files f WHERE f.site = {p} AND f.crossing_id = r.crossing_id"
    " AND f.state IN ('requested', 'uploading'))))")


def evidence_file_row(crossing_id: str, sha256: str, path: str, kind: str, size: int, chunks: int, have: int,
                      state: str, detail: str, updated_at: str) -> dict[str, Any]:
    return {"crossing_id": crossing_id, "sha256": sha256, "path": path, "kind": kind, "size": size,
            "chunks": chunks, "have": have, "state": state, "detail": detail, "updated_at": updated_at}


def id_bound(when: datetime) -> str:
    """The smallest id made at `when` (ids sort by their time, ids.py)."""
    return encode(int(when.timestamp() * 1000), 0)


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# The back-ends subclass the interface above, so they are imported after it.
from edge_agent.central.ledger.sqlite import SqliteLedger  # noqa: E402
