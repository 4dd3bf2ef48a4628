"""The hub's ledger on both back-ends: idempotent ingest, validation of upward events,
lookups, leases, released bundles, migrations, month partitions; and the routing decisions."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest

from edge_agent.central.ledger import UNDATED, CrossingQuery, Ledger, LedgerBusy, LedgerError, check_event, made_at
from edge_agent.central.ledger.sqlite import MIGRATIONS, SqliteLedger
from edge_agent.central.release import Destination, release
from edge_agent.central.routing import route
from edge_agent.ids import encode, new_id
from edge_agent.sync import topics


def ev(site: str = "bcp-a", stream: str = "crossing", event_id: str = "", **extra) -> bytes:
    return json.dumps({"id": event_id or new_id(), "stream": stream, "site": site, **extra}).encode()


def test_duplicates_are_stored_once_and_acknowledged_every_time(ledger_url):
    ledger = Ledger(ledger_url)
    a, b = ev(), ev(stream="hit")
    first = ledger.ingest([("bcp-a", "crossing", a), ("bcp-a", "hit", b)])
    again = ledger.ingest([("bcp-a", "crossing", a), ("bcp-a", "crossing", a)])
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert again.acks == {"bcp-a": [json.loads(a)["id"]] * 2}
    assert ledger.count() == 2 and ledger.count("bcp-a", "hit") == 1
    ledger.close()
    reopened = Ledger(ledger_url)
    assert reopened.ingest([("bcp-a", "crossing", a)]).duplicates == 1
    assert reopened.duplicates_stored() == 0
    reopened.close()


def test_bad_events_are_rejected_not_acknowledged(ledger_url):
    ledger = Ledger(ledger_url)
    batch = [
        ("bcp-a", "crossing", b"not json"),
        ("bcp-a", "crossing", b'{"stream": "crossing"}'),
        ("bcp-a", "crossing", ev(stream="hit")),
        ("bcp-a", "crossing", ev(site="bcp-b")),
        ("bcp-a", "crossing", b"[1]"),
    ]
    result = ledger.ingest(batch)
    assert result.stored == 0 and result.acks == {} and len(result.rejected) == 5
    assert ledger.rejection_count() == 5
    ledger.close()


def test_a_payload_postgresql_refuses_is_rejected_and_the_rest_of_its_batch_is_stored(pg_url):
    ledger = Ledger(pg_url)
    good, nul = ev(), ev(note="\u0000")  # valid JSON, but jsonb cannot hold a NUL character
    result = ledger.ingest([("bcp-a", "crossing", good), ("bcp-a", "crossing", nul)])
    assert result.stored == 1 and result.acks == {"bcp-a": [json.loads(good)["id"]]}
    assert [r[1] for r in result.rejected] == ["the ledger refused it: unsupported Unicode escape sequence"]
    assert ledger.rejection_count() == 1 and ledger.ids() == [json.loads(good)["id"]]
    ledger.close()


def test_check_event_accepts_a_core_payload():
    payload = ev(crossing="01X", outcome="released")
    event_id, text = check_event("bcp-a", "crossing", payload)
    assert event_id == json.loads(payload)["id"] and text == payload.decode()


def test_routing_by_office_of_entry():
    record = {
        "reference": "R1",
        "tractor_plate": "AB1",
        "gross_kg": 1,
        "consignor": {"name": "a"},
        "consignee": {"name": "b"},
        "office_of_entry": "XK0101",
    }
    site, found = route(json.dumps(record).encode(), {"XK0101": "bcp-a"})
    assert site == "bcp-a" and found.reference == "R1"
    assert route(json.dumps(record).encode(), {})[0] == "XK0101"
    assert route(json.dumps({**record, "office_of_entry": "hub"}).encode(), {})[0] is None
    assert route(json.dumps({**record, "office_of_entry": "a/b"}).encode(), {})[0] is None
    assert route(json.dumps({**record, "office_of_entry": ""}).encode(), {})[0] is None
    assert route(b'{"reference": 1}', {})[0] is None


def test_hits_for_tail(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.ingest([("bcp-a", "crossing", ev()), ("bcp-a", "hit", ev(stream="hit", indicator_id="C-1"))])
    hits = ledger.hits_after(0)
    assert len(hits) == 1 and hits[0][1] == "bcp-a" and hits[0][2]["indicator_id"] == "C-1"
    assert ledger.hits_after(hits[0][0]) == []
    assert ledger.max_rowid() >= hits[0][0]
    ledger.close()


def test_the_rau_finds_events_by_plate_reference_and_indicator(ledger_url):
    ledger = Ledger(ledger_url)
    crossing = ev(tractor_plate="SK123AB", trailer_plate="SK9XY", reference="SEED-7")
    hit = ev(stream="hit", reference="SEED-7", indicator_id="C-WEIGHT-10")
    other = ev(site="bcp-b", tractor_plate="ZZ1", reference="SEED-8")
    ledger.ingest([("bcp-a", "crossing", crossing), ("bcp-a", "hit", hit), ("bcp-b", "crossing", other)])
    assert [p["id"] for _, _, p in ledger.events_by(plate="SK123AB")] == [json.loads(crossing)["id"]]
    assert [p["id"] for _, _, p in ledger.events_by(plate="SK9XY")] == [json.loads(crossing)["id"]]
    # newest first: the hit's id was made after the crossing's
    assert [(s, st) for s, st, _ in ledger.events_by(reference="SEED-7")] == [("bcp-a", "hit"), ("bcp-a", "crossing")]
    assert [p["id"] for _, _, p in ledger.events_by(indicator_id="C-WEIGHT-10")] == [json.loads(hit)["id"]]
    assert ledger.events_by(reference="SEED-9") == []
    ledger.close()


def test_latest_orders_by_a_numeric_field_as_a_number(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.ingest([("bcp-a", "audit_anchor", ev(stream="audit_anchor", seq=seq)) for seq in (9, 17, 3)])
    assert ledger.latest("bcp-a", "audit_anchor", "seq")["seq"] == 17
    assert ledger.latest("bcp-b", "audit_anchor", "seq") is None
    ledger.close()


def test_a_routed_record_waits_until_it_is_published(ledger_url):
    ledger = Ledger(ledger_url)
    body = json.dumps({"reference": "R1", "version": 1, "tractor_plate": "AB1"})
    assert ledger.record_routed("R1", 1, "bcp-a", body) is True
    assert ledger.record_routed("R1", 1, "bcp-a", body) is False
    assert [(r, v, s) for r, v, s, _ in ledger.routed_pending()] == [("R1", 1, "bcp-a")]
    assert json.loads(ledger.routed_pending()[0][3]) == json.loads(body)
    ledger.mark_routed_published([("R1", 1)])
    assert ledger.routed_pending() == []
    assert ledger.routed_record("R1")["tractor_plate"] == "AB1"
    ledger.close()


def bundle(level: str, scope: str, version: int, kind: str = "full") -> bytes:
    """A bundle's envelope as `central sign` writes it; the hub reads only the signed body's fields."""
    signed = {"level": level, "scope": scope, "version": version, "kind": kind, "indicators": []}
    return json.dumps({"bundle": {"signed": signed, "signatures": []}}).encode()


def test_a_released_bundle_waits_until_it_is_published_and_is_released_once(ledger_url):
    ledger = Ledger(ledger_url)
    full, delta = bundle("central", "central", 7), bundle("central", "central", 8, kind="delta")
    found, new = release(ledger, full)
    assert new and found == Destination(topics.INDICATORS_CENTRAL, True, "full bundle central:central v7")
    assert release(ledger, delta) == (Destination(topics.INDICATORS_CENTRAL, False, "delta bundle central:central v8"),
                                      True)
    assert release(ledger, full)[1] is False  # the same bytes again: not queued twice
    pending = ledger.bundles_pending()
    assert [(topic, retain, payload) for _, topic, retain, _, payload in pending] == [
        (topics.INDICATORS_CENTRAL, True, full), (topics.INDICATORS_CENTRAL, False, delta)]  # in release order
    ledger.mark_bundle_published(pending[0][0])
    assert [label for _, _, _, label, _ in ledger.bundles_pending()] == ["delta bundle central:central v8"]
    listed = ledger.bundles()
    assert [(label, bool(published)) for label, _, _, published in listed] == [
        ("delta bundle central:central v8", False), ("full bundle central:central v7", True)]
    assert all(queued[:4].isdigit() and "T" in queued for _, _, queued, _ in listed)
    ledger.close()


def test_a_bundle_the_hub_cannot_place_is_not_released(tmp_path):
    ledger = Ledger(tmp_path / "c.db")
    assert release(ledger, b"not json").startswith("not a bundle")
    assert release(ledger, bundle("site", "bcp-a/down", 1)) == "bad scope 'bcp-a/down'"
    assert release(ledger, bundle("moon", "x", 1)) == "bad level 'moon' for scope 'x'"
    assert release(ledger, bundle("region", "north", 3))[0].topic == topics.indicators_region("north")
    assert release(ledger, bundle("site", "bcp-a", 3))[0].topic == topics.down("bcp-a", "indicators")
    assert len(ledger.bundles()) == 2
    ledger.close()


def test_one_holder_at_a_time_takes_a_lease(ledger_url):
    first, second = Ledger(ledger_url), Ledger(ledger_url)
    assert first.lease_holder("duties") is None
    assert first.take_lease("duties", "w1", 30) is True
    assert second.take_lease("duties", "w2", 30) is False
    assert second.lease_holder("duties") == "w1"
    assert first.take_lease("duties", "w1", 30) is True  # renewed
    first.release_lease("duties", "w1")
    assert second.take_lease("duties", "w2", 30) is True
    assert first.take_lease("duties", "w1", 30) is False
    assert second.take_lease("expired", "w2", -1) is True  # a lease past its time ...
    assert first.lease_holder("expired") is None
    assert first.take_lease("expired", "w1", 30) is True  # ... is taken over
    first.close()
    second.close()


def test_a_second_worker_on_one_sqlite_file_is_refused(tmp_path):
    one, two = Ledger(tmp_path / "c.db"), Ledger(tmp_path / "c.db")
    with one.serving("w1"), pytest.raises(LedgerBusy, match=r"w1 .* already serves the SQLite ledger .* PostgreSQL"), \
            two.serving("w2"):
        pass
    with two.serving("w2"):  # free again once the first has stopped
        pass
    one.close()
    two.close()


def test_several_workers_may_serve_one_postgresql_ledger(pg_url):
    one, two = Ledger(pg_url), Ledger(pg_url)
    with one.serving("w1"), two.serving("w2"):
        assert one.ingest([("bcp-a", "crossing", ev())]).stored == 1
        assert two.ingest([("bcp-a", "crossing", ev())]).stored == 1
    assert one.count() == 2
    one.close()
    two.close()


def test_urls_choose_the_back_end(tmp_path):
    by_url = Ledger(f"sqlite:///{tmp_path / 'u.db'}")
    assert isinstance(by_url, SqliteLedger) and (tmp_path / "u.db").exists()
    by_url.close()
    with pytest.raises(LedgerError, match="unknown ledger URL"):
        Ledger("mysql://db/ledger")


def test_a_ledger_from_before_migrations_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])  # what the first hub wrote, with no version set
    old = ev(tractor_plate="OLD1")
    conn.execute("INSERT INTO events VALUES (?, 'bcp-a', 'crossing', '2026-01-01T00:00:00', ?)",
                 (json.loads(old)["id"], old.decode()))
    conn.execute("INSERT INTO routed VALUES ('R0', 1, 'bcp-a', '2026-01-01T00:00:00', '{}')")
    conn.commit()
    conn.close()
    ledger = Ledger(path)
    assert ledger.schema_version == len(MIGRATIONS)
    assert ledger.ingest([("bcp-a", "crossing", old)]).duplicates == 1
    assert [p["tractor_plate"] for _, _, p in ledger.events_by(plate="OLD1")] == ["OLD1"]
    assert ledger.routed_pending() == []  # the old hub published as it routed
    ledger.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="schema version"):
        Ledger(path)


def test_postgresql_keeps_events_in_month_partitions_one_row_per_id(pg_url):
    ledger = Ledger(pg_url)
    january = datetime(2026, 1, 15, tzinfo=UTC)
    long_ago = encode(int(datetime(2019, 6, 1, tzinfo=UTC).timestamp() * 1000), 1)  # new_id never goes back
    jan = encode(int(january.timestamp() * 1000), 2)
    batch = [("bcp-a", "crossing", ev(event_id=jan)), ("bcp-a", "crossing", ev(event_id=long_ago)),
             ("bcp-a", "crossing", ev(event_id="HANDMADE-ID-0001"))]
    assert ledger.ingest(batch).stored == 3
    assert ledger.ingest(batch).duplicates == 3  # a resend months later is still a duplicate
    assert made_at(jan) == datetime(2026, 1, 15, tzinfo=UTC) and made_at("HANDMADE-ID-0001") == UNDATED
    ledger.close()
    with psycopg.connect(pg_url) as conn:
        where = dict(conn.execute("SELECT id, tableoid::regclass::text FROM events").fetchall())
        partitions = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass")}
        now = datetime.now(UTC)
        assert f"events_{now.year:04d}_{now.month:02d}" in partitions  # made ahead
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT * FROM events WHERE made_at >= '2026-01-01' AND made_at < '2026-02-01'"))
    assert where == {jan: "events_2026_01", long_ago: "events_2019_06", "HANDMADE-ID-0001": "events_undated"}
    assert "events_2026_01" in plan and "events_2019_06" not in plan  # the planner prunes other months


def test_a_console_command_is_queued_once_listed_and_published_once(ledger_url):
    ledger = Ledger(ledger_url)
    body = json.dumps({"command": "raise_channel", "id": "cmd-1", "reference": "R1", "channel": "red"})
    assert ledger.queue_command("cmd-1", "bcp-a", body, "ana")
    assert not ledger.queue_command("cmd-1", "bcp-a", body, "ana")  # a resubmitted form queues nothing
    ledger.queue_command("cmd-2", "bcp-b", body.replace("cmd-1", "cmd-2"), "ben")
    assert [(c, s) for c, s, _ in ledger.commands_pending()] == [("cmd-1", "bcp-a"), ("cmd-2", "bcp-b")]
    ledger.mark_command_published("cmd-1")
    assert [c for c, _, _ in ledger.commands_pending()] == ["cmd-2"]
    listed = ledger.commands(site="bcp-a")
    assert len(listed) == 1 and listed[0]["by"] == "ana" and listed[0]["channel"] == "red"
    assert listed[0]["published_at"][:4].isdigit() and ledger.commands(site="bcp-b")[0]["published_at"] == ""
    assert [c["id"] for c in ledger.commands()] == ["cmd-2", "cmd-1"]
    ledger.close()


def test_a_sites_newest_event_is_the_time_of_its_newest_id(ledger_url):
    ledger = Ledger(ledger_url)
    older = encode(int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000), 1)
    newer = encode(int(datetime(2026, 3, 2, 8, tzinfo=UTC).timestamp() * 1000), 2)
    ledger.ingest([("bcp-a", "crossing", ev(event_id=newer)), ("bcp-a", "hit", ev(stream="hit", event_id=older))])
    assert ledger.last_event_at("bcp-a") == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert ledger.last_event_at("bcp-z") is None
    ledger.close()


def _at(day: int, hour: int = 8) -> int:
    return int(datetime(2026, 3, day, hour, tzinfo=UTC).timestamp() * 1000)


def test_crossings_are_found_across_sites_by_plate_reference_indicator_channel_and_time(ledger_url):
    ledger = Ledger(ledger_url)
    c1, c2, c3 = encode(_at(1), 1), encode(_at(2), 2), encode(_at(3), 3)
    ledger.ingest([
        ("bcp-a", "crossing", ev("bcp-a", event_id=encode(_at(1, 9), 9), crossing=c1, reference="R-1",
                                 tractor_plate="KS123AB", channel="red", hits=["tobacco", "weight"])),
        ("bcp-b", "crossing", ev("bcp-b", event_id=encode(_at(2, 9), 9), crossing=c2, reference="R-2",
                                 tractor_plate="BG555XY", trailer_plate="KS123AB", channel="green", hits=[])),
        ("bcp-b", "crossing", ev("bcp-b", event_id=encode(_at(3, 9), 9), crossing=c3, reference="R-3",
                                 tractor_plate="PR777", channel="yellow", hits=["weight"])),
        ("bcp-a", "hit", ev("bcp-a", "hit", event_id=encode(_at(1, 8) + 5, 5), crossing=c1, indicator_id="tobacco")),
    ])

    def found(**fields):
        return [body["crossing"] for _, body in ledger.find_crossings(CrossingQuery(**fields))]

    assert found(plate="KS123AB") == [c2, c1]  # tractor or trailer, newest first
    assert found(reference="R-3") == [c3]
    assert found(indicator_id="weight") == [c3, c1] and found(indicator_id="tobacco") == [c1]
    assert found(channel="green") == [c2] and found(site="bcp-b", channel="red") == []
    assert found(since=datetime(2026, 3, 2, tzinfo=UTC), until=datetime(2026, 3, 3, tzinfo=UTC)) == [c2]
    assert found(limit=1) == [c3]
    assert [(s, h["indicator_id"]) for s, h in ledger.recent_hits()] == [("bcp-a", "tobacco")]
    assert ledger.recent_hits(site="bcp-b") == []
    assert [stream for stream, _ in ledger.crossing_events("bcp-a", c1)] == ["hit", "crossing"]
    assert ledger.crossing_events("bcp-b", c1) == []
    ledger.close()
