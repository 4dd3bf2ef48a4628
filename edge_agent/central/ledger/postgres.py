"""The ledger on PostgreSQL (psycopg 3), for a whole country: several hub workers write it
at once, analysts and other systems query it.

Events are partitioned by month (declarative range partitioning) on `made_at`, the time
the event's own id carries (ULID layout, edge_agent/ids.py), not on the time the hub
received it: a unique key of a partitioned table must contain the partition key, and a
key that is a function of the id keeps "one row per id" true across partitions, so a
resend months later is still a duplicate. Ids without a plausible time go to the
`events_undated` partition. Month partitions are made ahead (this month and the next
`AHEAD_MONTHS`) and on demand when a batch brings a month that has none (a site with a
wrong clock), under an advisory lock so that workers do not race.

Migrations are numbered in `schema_migrations` and applied at open under an advisory
lock (the first worker to start migrates, the others wait and find nothing to do).
Documentation: PostgreSQL 15, "Table Partitioning" (5.11), "INSERT ... ON CONFLICT",
"Advisory Locks" (13.3.5).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from edge_agent.central.ledger import (
    _UNFINISHED_REQUESTS,
    CROSSING_SPAN,
    DRAFT_COLUMNS,
    UNDATED,
    AlertPlanner,
    CrossingQuery,
    DeliveryRow,
    IngestResult,
    Ledger,
    LedgerError,
    command_row,
    describe,
    draft_row,
    evidence_file_row,
    indexed_fields,
    made_at,
    parse_event,
    site_row,
)

log = logging.getLogger(__name__)

AHEAD_MONTHS = 2
_MIGRATION_LOCK = 7_301_501  # advisory lock keys: any constants, the same in every worker
_PARTITION_LOCK = 7_301_502

MIGRATIONS: list[str] = [
    # 1: the ledger, partitioned events and the RAU's lookups
    """
    CREATE SEQUENCE events_position;
    CREATE TABLE events (
        id text NOT NULL,
        made_at timestamptz NOT NULL,
        position bigint NOT NULL DEFAULT nextval('events_position'),
        site text NOT NULL,
        stream text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        tractor_plate text,
        trailer_plate text,
        reference text,
        indicator_id text,
        payload jsonb NOT NULL,
        PRIMARY KEY (id, made_at)
    ) PARTITION BY RANGE (made_at);
    CREATE TABLE events_undated PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('2000-01-01');
    CREATE INDEX events_site_time ON events (site, made_at);
    CREATE INDEX events_stream_time ON events (stream, made_at);
    CREATE INDEX events_tractor ON events (tractor_plate) WHERE tractor_plate IS NOT NULL;
    CREATE INDEX events_trailer ON events (trailer_plate) WHERE trailer_plate IS NOT NULL;
    CREATE INDEX events_reference ON events (reference) WHERE reference IS NOT NULL;
    CREATE INDEX events_indicator ON events (indicator_id, made_at) WHERE indicator_id IS NOT NULL;
    CREATE INDEX events_position_hits ON events (position) WHERE stream = 'hit';
    CREATE TABLE sites (
        site text PRIMARY KEY,
        state text NOT NULL DEFAULT '',
        state_at text NOT NULL DEFAULT '',
        health text NOT NULL DEFAULT '',
        health_at text NOT NULL DEFAULT ''
    );
    CREATE TABLE routed (
        reference text NOT NULL,
        version integer NOT NULL,
        site text NOT NULL,
        routed_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz,
        body jsonb NOT NULL,
        PRIMARY KEY (reference, version)
    );
    CREATE INDEX routed_pending ON routed (routed_at) WHERE published_at IS NULL;
    CREATE TABLE rejections (
        at timestamptz NOT NULL DEFAULT now(),
        source text NOT NULL,
        reason text NOT NULL,
        raw text NOT NULL
    );
    CREATE TABLE leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE deliveries (
        id bigserial PRIMARY KEY,
        hit_id text NOT NULL,
        site text NOT NULL,
        indicator_id text NOT NULL,
        target text NOT NULL,
        channel text NOT NULL,
        recipient text NOT NULL,
        subject text NOT NULL,
        body text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        error text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        due_at timestamptz NOT NULL DEFAULT now(),
        claimed_by text NOT NULL DEFAULT '',
        claimed_until timestamptz NOT NULL DEFAULT '-infinity',
        UNIQUE (hit_id, channel, recipient)
    );
    CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status = 'pending';
    CREATE INDEX deliveries_recipient ON deliveries (recipient, sent_at) WHERE status = 'sent';
    """,
    # 2: signed bundles released through the hub, published once by the lease holder
    """
    CREATE TABLE bundles (
        id bigserial PRIMARY KEY,
        sha256 text NOT NULL UNIQUE,
        topic text NOT NULL,
        retain boolean NOT NULL,
        label text NOT NULL,
        payload bytea NOT NULL,
        queued_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
    );
    """,
    # 3: downward commands from the RAU's console (channel raises), published once by the
    # lease holder (each site's newest event comes from events_site_time)
    """
    CREATE TABLE commands (
        id text PRIMARY KEY,
        site text NOT NULL,
        body text NOT NULL,
        by_user text NOT NULL,
        queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        published_at timestamptz
    );
    CREATE INDEX commands_pending ON commands (queued_at) WHERE published_at IS NULL;
    CREATE INDEX commands_site ON commands (site, queued_at);
    """,
    # 4: indicator-set drafts from the RAU console: drafted, submitted (signed by the
    # drafter), approved (signed by a second person and released as bundles)
    """
    CREATE TABLE indicator_drafts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        level text NOT NULL,
        scope text NOT NULL,
        document text NOT NULL,
        status text NOT NULL DEFAULT 'draft',
        version integer,
        signed text NOT NULL DEFAULT '',
        drafted_by text NOT NULL,
        drafted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        edited_by text NOT NULL DEFAULT '',
        edited_at timestamptz,
        submitted_by text NOT NULL DEFAULT '',
        submitted_at timestamptz,
        approved_by text NOT NULL DEFAULT '',
        approved_at timestamptz
    );
    CREATE UNIQUE INDEX indicator_drafts_approved ON indicator_drafts (level, scope, version)
        WHERE status = 'approved';
    CREATE INDEX routed_at ON routed (routed_at);
    """,
    # 5: evidence on demand: the RAU's requests, the files a site's manifests list for
    # them with their state, and the uploaded chunks (see the SQLite back-end for why here)
    """
    CREATE TABLE evidence_requests (
        id text PRIMARY KEY,
        site text NOT NULL,
        crossing_id text NOT NULL,
        by_user text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        state text NOT NULL DEFAULT 'requested',
        detail text NOT NULL DEFAULT '',
        proof text NOT NULL DEFAULT ''
    );
    CREATE INDEX evidence_requests_crossing ON evidence_requests (site, crossing_id);
    CREATE TABLE evidence_files (
        site text NOT NULL,
        crossing_id text NOT NULL,
        sha256 text NOT NULL,
        path text NOT NULL,
        kind text NOT NULL,
        size bigint NOT NULL,
        chunks integer NOT NULL,
        state text NOT NULL,
        detail text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (site, crossing_id, sha256)
    );
    CREATE INDEX evidence_files_digest ON evidence_files (site, sha256);
    CREATE TABLE evidence_chunks (
        site text NOT NULL,
        sha256 text NOT NULL,
        idx integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (site, sha256, idx)
    );
    CREATE TABLE cctv_snapshots (
        id text PRIMARY KEY,
        site text NOT NULL,
        lane text NOT NULL,
        by_user text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        state text NOT NULL DEFAULT 'requested',
        camera text NOT NULL DEFAULT '',
        taken_at text NOT NULL DEFAULT '',
        detail text NOT NULL DEFAULT '',
        data bytea
    );
    CREATE INDEX cctv_snapshots_site ON cctv_snapshots (site, requested_at);
    """,
]



def _iso(column: str) -> str:
    """SQL for a timestamptz column as UTC ISO 8601 text, as the SQLite back-end stores times."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


_DRAFT_SELECT = ", ".join(_iso(c) if c.endswith("_at") else c for c in DRAFT_COLUMNS)
_DELIVERY_COLUMNS = ("id, hit_id, site, indicator_id, target, channel, recipient, subject, body, status, attempts,"
                     f" error, {_iso('created_at')}, coalesce({_iso('sent_at')}, '')")

# One statement per batch: a column of values per array. The arrays go in PostgreSQL's
# binary format (%b): the text format escapes every quote of every JSON payload, which
# took most of a worker's CPU.
_INSERT_EVENTS = (
    "INSERT INTO events (id, made_at, site, stream, tractor_plate, trailer_plate, reference, indicator_id, payload)"
    " SELECT i, m, s, st, tp, tr, r, ind, p::jsonb FROM unnest("
    " %b::text[], %b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::text[]) AS u(i, m, s, st, tp, tr, r, ind, p)"
    " ON CONFLICT DO NOTHING RETURNING id"
)


def month_partition(when: datetime) -> tuple[str, str, str]:
    """(table name, from, to) of the month partition holding `when`."""
    start = datetime(when.year, when.month, 1, tzinfo=UTC)
    end = datetime(when.year + (when.month == 12), when.month % 12 + 1, 1, tzinfo=UTC)
    return f"events_{when.year:04d}_{when.month:02d}", start.isoformat(), end.isoformat()


class PostgresLedger(Ledger):
    def __init__(self, target: str | Path) -> None:
        self.url = str(target)
        try:
            self.conn = psycopg.connect(self.url, autocommit=True, row_factory=tuple_row)
        except psycopg.Error as err:
            raise LedgerError(f"cannot reach the ledger {describe(self.url)}: {err}") from err
        self._months: set[str] = set()
        self._migrate()
        self._months = {r[0] for r in self.conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass")}
        now = datetime.now(UTC)
        self.ensure_months([datetime(now.year + (now.month + k - 1) // 12, (now.month + k - 1) % 12 + 1, 1, tzinfo=UTC)
                            for k in range(AHEAD_MONTHS + 1)])

    def _migrate(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                              " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise LedgerError(f"{describe(self.url)} is at schema version {version};"
                                  f" this hub knows {len(MIGRATIONS)}")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self.conn.execute(script)
                self.conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
                log.info("ledger_migrated url=%s version=%d", describe(self.url), number)

    @property
    def schema_version(self) -> int:
        return self.conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]

    def ensure_months(self, times: list[datetime]) -> None:
        """Make the month partitions for `times` that do not exist yet."""
        wanted = {month_partition(t) for t in times if t != UNDATED}
        missing = sorted(p for p in wanted if p[0] not in self._months)
        if not missing:
            return
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            for name, start, end in missing:
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events"
                                  f" FOR VALUES FROM ('{start}') TO ('{end}')")
        for name, _, _ in missing:
            self._months.add(name)
            log.info("ledger_partition_ready table=%s", name)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ the hub's writes

    def ingest(self, batch: list[tuple[str, str, bytes]], plan: AlertPlanner | None = None) -> IngestResult:
        result = IngestResult()
        rows: list[tuple[Any, ...]] = []
        hits: list[tuple[str, dict[str, Any]]] = []
        for site, stream, payload in batch:
            event_id, body = parse_event(site, stream, payload)
            if event_id is None:
                result.rejected.append((f"{site}/{stream}", str(body), payload[:2000].decode("utf-8", "replace")))
                continue
            assert isinstance(body, dict)
            rows.append((event_id, made_at(event_id), site, stream, *indexed_fields(body), payload.decode("utf-8")))
            if plan is not None and stream == "hit" and body.get("notify"):
                hits.append((site, body))
        self.ensure_months([r[1] for r in rows])
        try:
            with self.conn.transaction():
                stored = self._insert_rows(rows)
                acked = rows
                self._finish(result, hits, plan)
        except psycopg.DataError:
            # One payload PostgreSQL will not take (a NUL in a string, say) must not hold
            # back the rest: store them one by one, rejecting only what fails.
            stored, acked = self._insert_each(rows, result, hits, plan)
        for row in acked:
            result.acks.setdefault(row[2], []).append(row[0])
        result.stored = len(stored)
        result.duplicates = len(acked) - result.stored
        return result

    def _finish(self, result: IngestResult, hits: list[tuple[str, dict[str, Any]]], plan: AlertPlanner | None) -> None:
        self._reject_rows(result.rejected)
        if hits and plan is not None:
            self._plan_all(result, hits, plan)

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> set[str]:
        if not rows:
            return set()
        columns = [list(c) for c in zip(*rows)]
        return {r[0] for r in self.conn.execute(_INSERT_EVENTS, columns).fetchall()}

    def _insert_each(self, rows: list[tuple[Any, ...]], result: IngestResult, hits: list[tuple[str, dict[str, Any]]],
                     plan: AlertPlanner | None) -> tuple[set[str], list[tuple[Any, ...]]]:
        stored: set[str] = set()
        acked = []
        result.alerts = 0
        with self.conn.transaction():
            for row in rows:
                try:
                    with self.conn.transaction():  # a savepoint
                        stored |= self._insert_rows([row])
                except psycopg.DataError as err:
                    result.rejected.append((f"{row[2]}/{row[3]}", f"the ledger refused it: {err}".splitlines()[0],
                                            row[-1][:2000]))
                    continue
                acked.append(row)
            kept = {r[0] for r in acked}
            self._finish(result, [(site, hit) for site, hit in hits if hit["id"] in kept], plan)
        return stored, acked

    def _reject_rows(self, rejected: list[tuple[str, str, str]]) -> None:
        if rejected:
            with self.conn.cursor() as cur:
                cur.executemany("INSERT INTO rejections (source, reason, raw) VALUES (%s, %s, %s)",
                                [(s, r, raw.replace("\x00", "\\u0000")) for s, r, raw in rejected])

    def _plan_all(self, result: IngestResult, hits: list[tuple[str, dict[str, Any]]], plan: AlertPlanner) -> None:
        # The deliveries are keyed by (hit, channel, recipient): planning again for a hit
        # received twice, by this worker or another, inserts nothing.
        for site, hit in hits:
            crossing = None
            if isinstance(hit.get("crossing"), str):
                row = self.conn.execute(
                    "SELECT payload FROM events WHERE site = %s AND stream = 'crossing' AND id > %s"
                    " AND made_at >= %s AND payload->>'crossing' = %s LIMIT 1",
                    (site, hit["id"], made_at(hit["id"]), hit["crossing"])).fetchone()
                crossing = row[0] if row else None
            prearrival = self.routed_record(hit["reference"]) if isinstance(hit.get("reference"), str) else None
            for d in plan(site, hit, prearrival, crossing):
                cur = self.conn.execute(
                    "INSERT INTO deliveries (hit_id, site, indicator_id, target, channel, recipient, subject, body,"
                    " status, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (d.hit_id, d.site, d.indicator_id, d.target, d.channel, d.recipient, d.subject, d.body,
                     d.status, d.error))
                result.alerts += cur.rowcount

    def set_status(self, site: str, state: str) -> None:
        self.conn.execute(
            "INSERT INTO sites (site, state, state_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (site) DO UPDATE SET state = excluded.state, state_at = excluded.state_at",
            (site, state, _now()))

    def set_health(self, site: str, health: str) -> None:
        self.conn.execute(
            "INSERT INTO sites (site, health, health_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (site) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
            (site, health.replace("\x00", ""), _now()))

    def record_routed(self, reference: str, version: int, site: str, body: str) -> bool:
        cur = self.conn.execute(
            "INSERT INTO routed (reference, version, site, body) VALUES (%s, %s, %s, %s::jsonb)"
            " ON CONFLICT DO NOTHING", (reference, version, site, body))
        return bool(cur.rowcount)

    def routed_pending(self, limit: int = 500) -> list[tuple[str, int, str, str]]:
        rows = self.conn.execute(
            "SELECT reference, version, site, body::text FROM routed WHERE published_at IS NULL"
            " ORDER BY routed_at, reference LIMIT %s", (limit,)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def mark_routed_published(self, keys: list[tuple[str, int]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany("UPDATE routed SET published_at = now() WHERE reference = %s AND version = %s", keys)

    def queue_bundle(self, sha256: str, topic: str, retain: bool, label: str, payload: bytes) -> bool:
        cur = self.conn.execute(
            "INSERT INTO bundles (sha256, topic, retain, label, payload) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING", (sha256, topic, retain, label, payload))
        return bool(cur.rowcount)

    def bundles_pending(self) -> list[tuple[int, str, bool, str, bytes]]:
        rows = self.conn.execute("SELECT id, topic, retain, label, payload FROM bundles WHERE published_at IS NULL"
                                 " ORDER BY id").fetchall()
        return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def mark_bundle_published(self, bundle_id: int) -> None:
        self.conn.execute("UPDATE bundles SET published_at = now() WHERE id = %s", (bundle_id,))

    def bundles(self, limit: int = 20) -> list[tuple[str, str, str, str]]:
        rows = self.conn.execute(f"SELECT label, topic, {_iso('queued_at')}, coalesce({_iso('published_at')}, '')"
                                 " FROM bundles ORDER BY id DESC LIMIT %s", (limit,)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def queue_command(self, command_id: str, site: str, body: str, by: str) -> bool:
        cur = self.conn.execute("INSERT INTO commands (id, site, body, by_user) VALUES (%s, %s, %s, %s)"
                                " ON CONFLICT DO NOTHING", (command_id, site, body, by))
        return bool(cur.rowcount)

    def commands_pending(self, limit: int = 100) -> list[tuple[str, str, str]]:
        rows = self.conn.execute("SELECT id, site, body FROM commands WHERE published_at IS NULL"
                                 " ORDER BY queued_at, id LIMIT %s", (limit,)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def mark_command_published(self, command_id: str) -> None:
        self.conn.execute("UPDATE commands SET published_at = now() WHERE id = %s", (command_id,))

    def commands(self, site: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = ("WHERE site = %s ", (site,)) if site else ("", ())
        rows = self.conn.execute(
            f"SELECT id, site, by_user, {_iso('queued_at')}, coalesce({_iso('published_at')}, ''), body"
            f" FROM commands {where}ORDER BY queued_at DESC, id DESC LIMIT %s", (*args, limit)).fetchall()
        return [command_row(*r) for r in rows]

    def reject(self, source: str, reason: str, raw: str) -> None:
        self.conn.execute("INSERT INTO rejections (source, reason, raw) VALUES (%s, %s, %s)",
                          (source, reason, raw[:2000].replace("\x00", "\\u0000")))

    # ------------------------------------------------------------------ evidence on demand

    def add_evidence_request(self, request_id: str, site: str, crossing_id: str, by: str) -> None:
        self.conn.execute("INSERT INTO evidence_requests (id, site, crossing_id, by_user) VALUES (%s, %s, %s, %s)"
                          " ON CONFLICT DO NOTHING", (request_id, site, crossing_id, by))

    def set_evidence_request(self, request_id: str, state: str, detail: str = "", proof: str = "") -> None:
        self.conn.execute("UPDATE evidence_requests SET state = %s, detail = %s, proof = %s WHERE id = %s",
                          (state, detail, proof, request_id))

    def reopen_evidence_requests(self, site: str) -> int:
        cur = self.conn.execute(f"UPDATE commands SET published_at = NULL WHERE published_at IS NOT NULL AND id IN"
                                f" ({_UNFINISHED_REQUESTS.format(p='%s')})", (site, site))
        return cur.rowcount

    def evidence_requests(self, site: str, crossing_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT id, by_user, {_iso('requested_at')}, state, detail, proof FROM evidence_requests"
            " WHERE site = %s AND crossing_id = %s ORDER BY requested_at DESC, id DESC", (site, crossing_id)).fetchall()
        return [dict(zip(("id", "by", "requested_at", "state", "detail", "proof"), r, strict=True)) for r in rows]

    def evidence_anchored(self, site: str, digests: list[str]) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT payload ->> 'sha256', (payload ->> 'sequence')::bigint FROM events"
            " WHERE site = %s AND stream = 'evidence_head' AND payload ->> 'sha256' = ANY(%s)",
            (site, list(digests))).fetchall()
        return {r[0]: r[1] for r in rows}

    def put_evidence_file(self, site: str, crossing_id: str, entry: dict[str, Any], chunks: int, state: str,
                          detail: str = "") -> None:
        self.conn.execute(
            "INSERT INTO evidence_files (site, crossing_id, sha256, path, kind, size, chunks, state, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, crossing_id, sha256) DO UPDATE"
            " SET chunks = excluded.chunks, state = excluded.state, detail = excluded.detail,"
            " updated_at = clock_timestamp() WHERE evidence_files.state != 'verified'",
            (site, crossing_id, entry["sha256"], entry["path"], entry.get("kind", ""), int(entry.get("size", 0)),
             chunks, state, detail))

    def set_evidence_file_state(self, site: str, sha256: str, state: str, detail: str = "") -> None:
        self.conn.execute("UPDATE evidence_files SET state = %s, detail = %s, updated_at = clock_timestamp()"
                          " WHERE site = %s AND sha256 = %s", (state, detail, site, sha256))

    def evidence_files(self, site: str, crossing_id: str = "", sha256: str = "") -> list[dict[str, Any]]:
        where, arg = ("crossing_id = %s", crossing_id) if crossing_id else ("sha256 = %s", sha256)
        rows = self.conn.execute(
            "SELECT crossing_id, sha256, path, kind, size, chunks, (SELECT count(*) FROM evidence_chunks c"
            f" WHERE c.site = f.site AND c.sha256 = f.sha256), state, detail, {_iso('updated_at')}"
            f" FROM evidence_files f WHERE site = %s AND {where} ORDER BY path", (site, arg)).fetchall()
        return [evidence_file_row(*r) for r in rows]

    def store_evidence_chunk(self, site: str, sha256: str, index: int, data: bytes) -> bool:
        cur = self.conn.execute("INSERT INTO evidence_chunks (site, sha256, idx, data) VALUES (%s, %s, %s, %s)"
                                " ON CONFLICT DO NOTHING", (site, sha256, index, data))
        return bool(cur.rowcount)

    def evidence_chunk_indexes(self, site: str, sha256: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT idx FROM evidence_chunks WHERE site = %s AND sha256 = %s"
                                                " ORDER BY idx", (site, sha256)).fetchall()]

    def evidence_content(self, site: str, sha256: str) -> bytes:
        return b"".join(bytes(r[0]) for r in self.conn.execute(
            "SELECT data FROM evidence_chunks WHERE site = %s AND sha256 = %s ORDER BY idx", (site, sha256)).fetchall())

    def drop_evidence_chunks(self, site: str, sha256: str) -> None:
        self.conn.execute("DELETE FROM evidence_chunks WHERE site = %s AND sha256 = %s", (site, sha256))

    def add_cctv_request(self, request_id: str, site: str, lane: str, by: str) -> None:
        self.conn.execute("INSERT INTO cctv_snapshots (id, site, lane, by_user) VALUES (%s, %s, %s, %s)"
                          " ON CONFLICT DO NOTHING", (request_id, site, lane, by))

    def put_cctv_snapshot(self, request_id: str, site: str, state: str, camera: str = "", taken_at: str = "",
                          data: bytes = b"", detail: str = "") -> bool:
        cur = self.conn.execute(
            "UPDATE cctv_snapshots SET state = %s, camera = %s, taken_at = %s, data = %s, detail = %s"
            " WHERE id = %s AND site = %s AND state = 'requested'",
                (state, camera, taken_at, data or None, detail, request_id, site))
        return bool(cur.rowcount)

    def cctv_snapshots(self, site: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT id, lane, by_user, {_iso('requested_at')}, state, camera, taken_at, detail,"
            " coalesce(octet_length(data), 0) FROM cctv_snapshots WHERE site = %s"
            " ORDER BY requested_at DESC, id DESC LIMIT %s", (site, limit)).fetchall()
        return [dict(zip(("id", "lane", "by", "requested_at", "state", "camera", "taken_at", "detail", "bytes"), r,
                         strict=True)) for r in rows]

    def cctv_snapshot_data(self, site: str, request_id: str) -> bytes | None:
        row = self.conn.execute("SELECT data FROM cctv_snapshots WHERE id = %s AND site = %s AND state = 'received'",
                                (request_id, site)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    @contextlib.contextmanager
    def serving(self, holder: str) -> Iterator[None]:
        yield  # any number of workers: the keys and the leases keep them apart

    def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        row = self.conn.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (%s, %s, now() + %s * interval '1 second')"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            " WHERE leases.holder = excluded.holder OR leases.expires_at < now() RETURNING holder",
            (name, holder, ttl_s)).fetchone()
        return row is not None

    def release_lease(self, name: str, holder: str) -> None:
        self.conn.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        row = self.conn.execute("SELECT holder FROM leases WHERE name = %s AND expires_at >= now()",
                                (name,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ alerts

    def claim_deliveries(self, holder: str, limit: int, lease_s: float) -> list[DeliveryRow]:
        rows = self.conn.execute(
            "UPDATE deliveries SET claimed_by = %s, claimed_until = now() + %s * interval '1 second'"
            " WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND due_at <= now()"
            " AND claimed_until < now() ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_DELIVERY_COLUMNS}", (holder, lease_s, limit)).fetchall()
        return sorted((DeliveryRow(*r) for r in rows), key=lambda d: d.id)

    def finish_delivery(self, delivery_id: int, status: str, error: str = "", retry_in_s: float | None = None) -> None:
        if status == "pending":
            self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, error = %s,"
                " due_at = now() + %s * interval '1 second', claimed_until = '-infinity' WHERE id = %s",
                (error, retry_in_s or 0.0, delivery_id))
        else:
            self.conn.execute(
                "UPDATE deliveries SET status = %s, attempts = attempts + %s, error = %s, sent_at = now(),"
                " claimed_until = '-infinity' WHERE id = %s",
                (status, 0 if status == "suppressed" else 1, error, delivery_id))

    def sent_since(self, recipient: str, window_s: float) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'sent' AND recipient = %s"
            " AND sent_at > now() - %s * interval '1 second'", (recipient, window_s)).fetchone()[0]

    def deliveries(self, *, failed_only: bool = False, limit: int = 100) -> list[DeliveryRow]:
        where = "WHERE status IN ('failed', 'suppressed')" if failed_only else ""
        rows = self.conn.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id DESC LIMIT %s",
                                 (limit,)).fetchall()
        return [DeliveryRow(*r) for r in rows]

    def delivery_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall())

    # ------------------------------------------------------------------ reads

    def count(self, site: str | None = None, stream: str | None = None) -> int:
        sql, args = "SELECT count(*) FROM events WHERE true", []
        if site:
            sql, args = sql + " AND site = %s", [*args, site]
        if stream:
            sql, args = sql + " AND stream = %s", [*args, stream]
        return self.conn.execute(sql, args).fetchone()[0]

    def ids(self, site: str | None = None) -> list[str]:
        if site:
            return [r[0] for r in self.conn.execute("SELECT id FROM events WHERE site = %s ORDER BY id", (site,))]
        return [r[0] for r in self.conn.execute("SELECT id FROM events ORDER BY id")]

    def duplicates_stored(self) -> int:
        return self.conn.execute("SELECT count(*) - count(DISTINCT id) FROM events").fetchone()[0]

    def hits_after(self, position: int, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT position, site, payload FROM events WHERE stream = 'hit' AND position > %s"
            " ORDER BY position LIMIT %s", (position, limit)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def max_rowid(self) -> int:
        return self.conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]

    def latest(self, site: str, stream: str, order_by: str) -> dict[str, Any] | None:
        # jsonb orders numbers as numbers, as SQLite's json_extract does.
        row = self.conn.execute(
            "SELECT payload FROM events WHERE site = %s AND stream = %s ORDER BY payload -> %s DESC NULLS LAST LIMIT 1",
            (site, stream, order_by)).fetchone()
        return row[0] if row else None

    def events_by(self, *, plate: str = "", reference: str = "", indicator_id: str = "",
                  limit: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        if plate:
            where, args = "tractor_plate = %s OR trailer_plate = %s", (plate, plate)
        elif reference:
            where, args = "reference = %s", (reference,)
        elif indicator_id:
            where, args = "indicator_id = %s", (indicator_id,)
        else:
            return []
        rows = self.conn.execute(f"SELECT site, stream, payload FROM events WHERE {where} ORDER BY id DESC LIMIT %s",
                                 (*args, limit)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def routed_record(self, reference: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT body FROM routed WHERE reference = %s ORDER BY version DESC LIMIT 1",
                                (reference,)).fetchone()
        return row[0] if row else None

    def recent_hits(self, limit: int = 50, site: str = "") -> list[tuple[str, dict[str, Any]]]:
        where, args = ("AND site = %s ", (site,)) if site else ("", ())
        rows = self.conn.execute(f"SELECT site, payload FROM events WHERE stream = 'hit' {where}"
                                 "ORDER BY made_at DESC, id DESC LIMIT %s", (*args, limit)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def find_crossings(self, query: CrossingQuery) -> list[tuple[str, dict[str, Any]]]:
        sql, args = "SELECT site, payload FROM events WHERE stream = 'crossing'", []
        if query.site:
            sql, args = sql + " AND site = %s", [*args, query.site]
        if query.since:
            sql, args = sql + " AND made_at >= %s", [*args, query.since]
        if query.until:
            sql, args = sql + " AND made_at < %s", [*args, query.until]
        if query.plate:
            sql, args = sql + " AND (tractor_plate = %s OR trailer_plate = %s)", [*args, query.plate, query.plate]
        if query.reference:
            sql, args = sql + " AND reference = %s", [*args, query.reference]
        if query.channel:
            sql, args = sql + " AND payload ->> 'channel' = %s", [*args, query.channel]
        if query.indicator_id:
            sql, args = sql + " AND payload -> 'hits' ? %s", [*args, query.indicator_id]
        if query.party:
            # The names are in the pre-arrival records the hub routed, not in the crossing.
            sql += (" AND reference IN (SELECT reference FROM routed WHERE"
                    " strpos(lower(body -> 'consignor' ->> 'name'), %s) > 0"
                    " OR strpos(lower(body -> 'consignee' ->> 'name'), %s) > 0)")
            args += [query.party.lower(), query.party.lower()]
        rows = self.conn.execute(sql + " ORDER BY made_at DESC, id DESC LIMIT %s", [*args, query.limit]).fetchall()
        return [(r[0], r[1]) for r in rows]

    def crossing_events(self, site: str, crossing_id: str) -> list[tuple[str, dict[str, Any]]]:
        sql = ("SELECT stream, payload FROM events WHERE site = %s"
               " AND coalesce(payload ->> 'crossing', payload ->> 'crossing_id') = %s")
        args: list[Any] = [site, crossing_id]
        began = made_at(crossing_id)
        if began != UNDATED:  # the crossing's own id says when it began: read only its window
            sql, args = sql + " AND made_at >= %s AND made_at < %s", [*args, began, began + CROSSING_SPAN]
        rows = self.conn.execute(sql + " ORDER BY made_at, id", args).fetchall()
        return [(r[0], r[1]) for r in rows]

    def sites(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT site, state, state_at, health, health_at FROM sites ORDER BY site").fetchall()
        return [site_row(*r) for r in rows]

    def last_event_at(self, site: str) -> datetime | None:
        row = self.conn.execute("SELECT max(made_at) FROM events WHERE site = %s AND made_at >= '2000-01-01'",
                                (site,)).fetchone()
        return row[0] if row and row[0] else None

    # ------------------------------------------------------------------ indicator drafts

    def create_draft(self, level: str, scope: str, document: str, by: str) -> int:
        row = self.conn.execute("INSERT INTO indicator_drafts (level, scope, document, drafted_by)"
                                " VALUES (%s, %s, %s, %s) RETURNING id", (level, scope, document, by)).fetchone()
        return int(row[0])

    def update_draft(self, draft_id: int, document: str, by: str) -> bool:
        cur = self.conn.execute("UPDATE indicator_drafts SET document = %s, edited_by = %s,"
                                " edited_at = clock_timestamp() WHERE id = %s AND status = 'draft'",
                                (document, by, draft_id))
        return bool(cur.rowcount)

    def submit_draft(self, draft_id: int, by: str, version: int, signed: str) -> bool:
        cur = self.conn.execute(
            "UPDATE indicator_drafts SET status = 'submitted', version = %s, signed = %s, submitted_by = %s,"
            " submitted_at = clock_timestamp() WHERE id = %s AND status = 'draft'", (version, signed, by, draft_id))
        return bool(cur.rowcount)

    def approve_draft(self, draft_id: int, by: str, signed: str) -> bool:
        try:
            cur = self.conn.execute(
                "UPDATE indicator_drafts d SET status = 'approved', signed = %s, approved_by = %s,"
                " approved_at = clock_timestamp() WHERE id = %s AND status = 'submitted' AND NOT EXISTS"
                " (SELECT 1 FROM indicator_drafts a WHERE a.status = 'approved' AND a.level = d.level"
                " AND a.scope = d.scope AND a.version >= d.version)", (signed, by, draft_id))
        except psycopg.errors.UniqueViolation:
            return False  # a concurrent approval took this version first
        return bool(cur.rowcount)

    def draft(self, draft_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(f"SELECT {_DRAFT_SELECT} FROM indicator_drafts WHERE id = %s", (draft_id,)).fetchone()
        return draft_row(row) if row else None

    def drafts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(f"SELECT {_DRAFT_SELECT} FROM indicator_drafts ORDER BY id DESC LIMIT %s",
                                 (limit,)).fetchall()
        return [draft_row(r) for r in rows]

    def latest_full_bundle(self, topic: str) -> bytes | None:
        row = self.conn.execute("SELECT payload FROM bundles WHERE topic = %s AND retain ORDER BY id DESC LIMIT 1",
                                (topic,)).fetchone()
        return bytes(row[0]) if row else None

    def routed_since(self, since: datetime, limit: int = 100_000) -> list[tuple[str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT DISTINCT ON (reference) site, body, routed_at FROM routed WHERE routed_at >= %s"
            " ORDER BY reference, version DESC LIMIT %s", (since, limit)).fetchall()
        return [(r[0], r[1]) for r in sorted(rows, key=lambda r: r[2], reverse=True)]
    # ------------------------------------------------------------------ effectiveness (issue 16, item 4)

    @staticmethod
    def _range(stream: str, since: datetime, until: datetime, site: str) -> tuple[str, list[Any]]:
        where, args = "stream = %s AND made_at >= %s AND made_at < %s", [stream, since, until]
        if site:
            where, args = where + " AND site = %s", [*args, site]
        return where, args

    def hit_crossings(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        where, args = self._range("hit", since, until, site)
        rows = self.conn.execute(
            "SELECT site, indicator_id, coalesce(payload ->> 'level', ''),"
            " coalesce(nullif(payload ->> 'crossing', ''), 'assessment:' || coalesce(payload ->> 'assessment', '')),"
            f" min(made_at) FROM events WHERE {where} AND indicator_id IS NOT NULL"
            " GROUP BY 1, 2, 3, 4", args).fetchall()
        return [{"site": r[0], "indicator_id": r[1], "level": r[2], "crossing_id": r[3], "made_at": r[4]}
                for r in rows]

    def control_outcomes(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        where, args = self._range("control_act", since, until + CROSSING_SPAN, site)
        rows = self.conn.execute(
            "SELECT site, payload ->> 'crossing_id', bool_or(payload ->> 'result' = 'positive')"
            f" FROM events WHERE {where} AND payload ->> 'crossing_id' IS NOT NULL GROUP BY 1, 2", args).fetchall()
        return [{"site": r[0], "crossing_id": r[1], "result": "positive" if r[2] else "negative"} for r in rows]

    def channel_counts(self, since: datetime, until: datetime, site: str = "") -> list[dict[str, Any]]:
        where, args = self._range("crossing", since, until, site)
        rows = self.conn.execute(
            "SELECT site, coalesce(payload ->> 'channel', ''), coalesce(payload ->> 'random_selected', '') = 'true',"
            f" count(*) FROM events WHERE {where} GROUP BY 1, 2, 3", args).fetchall()
        return [{"site": r[0], "channel": r[1], "random_selected": bool(r[2]), "count": r[3]} for r in rows]

    def rejection_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM rejections").fetchone()[0]

    def size_bytes(self) -> int:
        return self.conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def events_bytes(self) -> int:
        """The events' partitions with their indexes (the figure per site-day)."""
        return self.conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i"
            " WHERE i.inhparent = 'events'::regclass").fetchone()[0]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

