"""The hub's store: idempotent ingest, validation of upward events, routing decisions."""

from __future__ import annotations

import json

from edge_agent.central.ledger import Ledger, check_event
from edge_agent.central.routing import route
from edge_agent.ids import new_id


def ev(site: str = "bcp-a", stream: str = "crossing", **extra) -> bytes:
    return json.dumps({"id": new_id(), "stream": stream, "site": site, **extra}).encode()


def test_duplicates_are_stored_once_and_acknowledged_every_time(tmp_path):
    ledger = Ledger(tmp_path / "c.db")
    a, b = ev(), ev(stream="hit")
    first = ledger.ingest([("bcp-a", "crossing", a), ("bcp-a", "hit", b)])
    again = ledger.ingest([("bcp-a", "crossing", a), ("bcp-a", "crossing", a)])
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert again.acks == {"bcp-a": [json.loads(a)["id"]] * 2}
    assert ledger.count() == 2 and ledger.count("bcp-a", "hit") == 1
    ledger.close()
    reopened = Ledger(tmp_path / "c.db")
    assert reopened.ingest([("bcp-a", "crossing", a)]).duplicates == 1
    reopened.close()


def test_bad_events_are_rejected_not_acknowledged(tmp_path):
    ledger = Ledger(tmp_path / "c.db")
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


def test_hits_for_tail(tmp_path):
    ledger = Ledger(tmp_path / "c.db")
    ledger.ingest([("bcp-a", "crossing", ev()), ("bcp-a", "hit", ev(stream="hit", indicator_id="C-1"))])
    hits = ledger.hits_after(0)
    assert len(hits) == 1 and hits[0][1] == "bcp-a" and hits[0][2]["indicator_id"] == "C-1"
    assert ledger.hits_after(hits[0][0]) == []
    ledger.close()
