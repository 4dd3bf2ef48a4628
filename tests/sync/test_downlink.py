"""Downward payloads become events or Rejected values; decode never raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.models import AcksReceived, IndicatorBundleReceived, PreArrivalReceived, RauCommand, Rejected
from edge_agent.sync import topics
from edge_agent.sync.downlink import decode

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RECORD = {
    "reference": "AL-2026-77",
    "version": 2,
    "tractor_plate": "TR123AA",
    "gross_kg": 18000,
    "consignor": {"name": "A"},
    "consignee": {"name": "B"},
    "office_of_entry": "XK0101",
    "sent_at": "2026-05-01T10:00:00Z",
}


def run(topic: str, payload: bytes, **kw):
    return decode(topic, payload, site="bcp-a", region="north", now=NOW, **kw)


def test_ack():
    event = run(topics.down("bcp-a", "ack"), b'{"ids": ["01A", "01B"]}')
    assert isinstance(event, AcksReceived) and event.ids == ["01A", "01B"]


def test_prearrival_gets_an_expiry_when_it_has_none():
    event = run(topics.down("bcp-a", "prearrival"), json.dumps(RECORD).encode(), prearrival_ttl_s=3600)
    assert isinstance(event, PreArrivalReceived)
    assert event.record.expires_at == datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    assert event.record.version == 2


def test_prearrival_for_another_office_is_rejected():
    event = run(topics.down("bcp-a", "prearrival"), json.dumps(RECORD).encode(), office_codes=frozenset({"XK0202"}))
    assert isinstance(event, Rejected) and "office" in event.reason
    ok = run(topics.down("bcp-a", "prearrival"), json.dumps(RECORD).encode(), office_codes=frozenset({"XK0101"}))
    assert isinstance(ok, PreArrivalReceived)


def test_expired_prearrival_is_rejected():
    record = {**RECORD, "expires_at": (NOW - timedelta(minutes=1)).isoformat()}
    assert isinstance(run(topics.down("bcp-a", "prearrival"), json.dumps(record).encode()), Rejected)


def test_commands():
    event = run(topics.down("bcp-a", "command"), b'{"command": "raise_channel", "plate": "TR123AA", "channel": "red"}')
    assert isinstance(event, RauCommand) and event.command == "raise_channel" and event.channel == "red"
    resend = run(topics.down("bcp-a", "command"), b'{"id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "command": "resend"}')
    assert isinstance(resend, RauCommand) and resend.id == "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    hold = run(topics.down("bcp-a", "command"), b'{"command": "hold", "crossing_id": "01J9C", "reason": "case 88"}')
    assert isinstance(hold, RauCommand) and (hold.command, hold.crossing_id) == ("hold", "01J9C")


def test_bundles_pass_through_as_bytes():
    for topic in (topics.INDICATORS_CENTRAL, topics.indicators_region("north"), topics.down("bcp-a", "indicators")):
        event = run(topic, b"\x00opaque")
        assert isinstance(event, IndicatorBundleReceived) and event.payload == b"\x00opaque" and event.topic == topic
    assert isinstance(run(topics.INDICATORS_CENTRAL, b"x" * 2000, max_bundle_bytes=1000), Rejected)


@pytest.mark.parametrize(
    "topic,payload",
    [
        (topics.down("bcp-a", "ack"), b""),
        (topics.down("bcp-a", "ack"), b'{"ids": []}'),
        (topics.down("bcp-a", "ack"), b'{"ids": "01A"}'),
        (topics.down("bcp-a", "ack"), b"\xff\xfe"),
        (topics.down("bcp-a", "prearrival"), b'{"reference": "X"}'),
        (topics.down("bcp-a", "prearrival"), json.dumps({**RECORD, "sent_at": "2026-05-01T10:00:00"}).encode()),
        (topics.down("bcp-a", "prearrival"), b"[1, 2"),
        (topics.down("bcp-a", "prearrival"), b"{" + b" " * 300_000 + b"}"),
        (topics.down("bcp-a", "command"), b'{"command": "format_disk"}'),
        (topics.down("bcp-a", "command"), b'{"command": "ping", "extra": 1}'),
        (topics.down("bcp-b", "ack"), b'{"ids": ["01A"]}'),
        (topics.indicators_region("south"), b"{}"),
    ],
)
def test_malformed_payloads_become_rejected_values(topic, payload):
    event = run(topic, payload)
    assert isinstance(event, Rejected)
    assert event.reason and event.source.startswith("sync:")


def test_topic_layout():
    assert topics.up("bcp-a", "hit") == "bcp/v1/bcp-a/up/hit"
    assert topics.parse_up("bcp/v1/bcp-a/up/hit") == ("bcp-a", "hit")
    assert topics.parse_up("bcp/v1/indicators/up/hit") is None
    assert topics.parse_up("bcp/v1/bcp-a/down/ack") is None
    assert topics.parse_status("bcp/v1/bcp-a/status") == "bcp-a"
    assert topics.site_subscriptions("bcp-a", "north") == [
        "bcp/v1/bcp-a/down/#",
        "bcp/v1/indicators/central",
        "bcp/v1/indicators/region/north",
    ]
    with pytest.raises(ValueError):
        topics.down("bcp-a", "nonsense")
