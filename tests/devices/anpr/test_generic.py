import base64
import json
from datetime import UTC, datetime

import pytest

from edge_agent.devices.anpr.generic import build_generic, parse_generic
from edge_agent.models import Rejected

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


def test_full_push():
    at = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    body = build_generic("NI 987-KM", confidence=0.87, country="SRB", timestamp=at, lane="L2", camera="L2-rear",
                         event_id="x1", jpeg=JPEG)
    note = parse_generic(body, "application/json; charset=utf-8")
    assert (note.plate, note.confidence, note.country, note.lane, note.camera, note.event_id, note.at) == \
        ("NI 987-KM", 0.87, "SRB", "L2", "L2-rear", "x1", at)
    assert note.images[0].jpeg == JPEG


def test_minimal_push_and_unknown_keys_ignored():
    note = parse_generic(b'{"plate": "AB 123 CD", "vendor_field": 5}')
    assert note.plate == "AB 123 CD" and note.confidence is None and note.images == ()


@pytest.mark.parametrize("doc, reason", [
    ({}, "plate"),
    ({"plate": ""}, "plate"),
    ({"plate": "   "}, "plate: empty"),
    ({"plate": 12}, "plate"),
    ({"plate": "X" * 41}, "plate"),
    ({"plate": "AB1", "confidence": 1.5}, "confidence"),
    ({"plate": "AB1", "timestamp": "yesterday"}, "timestamp"),
    ({"plate": "AB1", "timestamp": "2026-05-01T10:00:00"}, "time zone"),
    ({"plate": "AB1", "image": "***"}, "not base64"),
    ({"plate": "AB1", "image": base64.b64encode(b"GIF89a").decode()}, "not a JPEG"),
])
def test_bad_fields(doc, reason):
    result = parse_generic(json.dumps(doc).encode())
    assert isinstance(result, Rejected)
    assert reason in result.reason
    assert "image" not in json.loads(result.raw) if result.raw.startswith("{") else True


@pytest.mark.parametrize("body, ctype, reason", [
    (b"", "application/json", "empty"),
    (b"{", "application/json", "malformed JSON"),
    (b'"plate"', "application/json", "not an object"),
    (b'{"plate": "A"}', "text/plain", "not JSON"),
    (b"\xff\xfe", "application/json", "malformed JSON"),
])
def test_bad_bodies(body, ctype, reason):
    result = parse_generic(body, ctype)
    assert isinstance(result, Rejected) and reason in result.reason


def test_deeply_nested_json_is_refused():
    result = parse_generic(b"[" * 100_000)
    assert isinstance(result, Rejected) and result.reason == "JSON nested too deeply"
    # Nested just shallow enough to load: the rejection still names the field.
    deep = b'{"plate": 5, "extra": ' + b"[" * 900 + b"]" * 900 + b"}"
    result = parse_generic(deep)
    assert isinstance(result, Rejected) and "plate" in result.reason
