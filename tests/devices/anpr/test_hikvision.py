import json

import pytest

from edge_agent.devices.anpr.hikvision import build_alert_xml, build_multipart, parse_hikvision
from edge_agent.devices.anpr.multipart import MultipartReader
from edge_agent.devices.anpr.notification import Ignored, PlateNotification
from edge_agent.models import Rejected

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


def alert(**kwargs) -> bytes:
    defaults = dict(confidence_pct=91, country="SRB", channel_name="front", event_id="e-1")
    return build_alert_xml("BG 123-AA", **{**defaults, **kwargs})


def test_bare_xml():
    note = parse_hikvision(alert(), "application/xml; charset=UTF-8")
    assert isinstance(note, PlateNotification)
    assert (note.plate, note.confidence, note.country, note.camera, note.event_id) == \
        ("BG 123-AA", 0.91, "SRB", "front", "e-1")


def test_xml_without_namespace_and_without_confidence():
    body = (b"<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>SK1234AB</licensePlate>"
            b"</ANPR></EventNotificationAlert>")
    note = parse_hikvision(body, "text/xml")
    assert note.plate == "SK1234AB" and note.confidence is None


def test_multipart_with_xml_and_three_pictures():
    pictures = {"licensePlatePicture.jpg": JPEG, "detectionPicture.jpg": JPEG + b"1", "vehiclePicture.jpg": JPEG}
    body, ctype = build_multipart(alert(), pictures)
    note = parse_hikvision(body, ctype)
    assert note.plate == "BG 123-AA"
    assert [i.kind for i in note.images] == ["plate", "scene", "vehicle"]
    assert note.images[1].jpeg == JPEG + b"1"


def test_multipart_with_json_part():
    doc = json.dumps({"eventType": "ANPR", "channelName": "rear", "dateTime": "2026-05-01T10:00:00+02:00",
                      "ANPR": {"licensePlate": "01 123-AB", "confidenceLevel": 77, "country": "RKS"}}).encode()
    body, ctype = build_multipart(doc, {"licensePlatePicture.jpg": JPEG}, document_type="application/json")
    note = parse_hikvision(body, ctype)
    assert (note.plate, note.confidence, note.country, note.camera) == ("01 123-AB", 0.77, "RKS", "rear")
    assert note.at.utcoffset().total_seconds() == 7200


def test_bare_json_wrapped():
    doc = {"EventNotificationAlert": {"eventType": "ANPR", "ANPR": {"licensePlate": "PG AB 123"}}}
    assert parse_hikvision(json.dumps(doc).encode(), "application/json").plate == "PG AB 123"


def test_multipart_reader_same_parts_byte_by_byte():
    body, ctype = build_multipart(alert(), {"licensePlatePicture.jpg": JPEG})
    boundary = ctype.split("boundary=")[1].encode()
    whole = MultipartReader(boundary).feed(body)
    reader = MultipartReader(boundary)
    parts = []
    for i in range(len(body)):
        parts += reader.feed(body[i:i + 1])
    assert reader.finished
    assert [(p.headers, p.body) for p in parts] == [(p.headers, p.body) for p in whole]
    assert len(parts) == 2 and parts[1].body == JPEG


@pytest.mark.parametrize("event_type, state", [("videoloss", "active"), ("VMD", "active"), ("ANPR", "inactive")])
def test_heartbeats_and_other_events_are_ignored(event_type, state):
    body = build_alert_xml("", event_type=event_type, event_state=state)
    assert isinstance(parse_hikvision(body, "application/xml"), Ignored)


def test_anpr_without_plate_is_ignored():
    assert isinstance(parse_hikvision(build_alert_xml("unknown"), "application/xml"), Ignored)


MALFORMED = [
    (b"", "application/xml", "empty body"),
    (b"<EventNotificationAlert><eventType>ANPR", "application/xml", "malformed XML"),
    (b"<Other/>", "application/xml", "not EventNotificationAlert"),
    (b"<EventNotificationAlert></EventNotificationAlert>", "application/xml", "without eventType"),
    (b"<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>", "application/xml",
     "without an ANPR element"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><EventNotificationAlert/>', "application/xml",
     "DOCTYPE"),
    (b"{not json", "application/json", "malformed JSON"),
    (b"[1, 2]", "application/json", "not an object"),
    (b'{"eventType": "ANPR", "ANPR": "x"}', "application/json", "ANPR is not an object"),
    (b"--b\r\nContent-Type: application/xml\r\n\r\n<x/>\r\n", "multipart/form-data; boundary=b", "closing boundary"),
    (b"whatever", "multipart/form-data", "without a boundary"),
    (b"--b\r\nContent-Type: image/jpeg\r\n\r\n" + JPEG + b"\r\n--b--\r\n", "multipart/form-data; boundary=b",
     "without an XML or JSON event part"),
]


@pytest.mark.parametrize("body, ctype, reason", MALFORMED)
def test_malformed_bodies_are_rejected_with_reason(body, ctype, reason):
    result = parse_hikvision(body, ctype)
    assert isinstance(result, Rejected)
    assert reason in result.reason


@pytest.mark.parametrize("level, reason", [("abc", "not a number"), ("140", "outside 0..100")])
def test_bad_confidence(level, reason):
    body = alert().replace(b"<confidenceLevel>91</confidenceLevel>",
                           f"<confidenceLevel>{level}</confidenceLevel>".encode())
    result = parse_hikvision(body, "application/xml")
    assert isinstance(result, Rejected) and reason in result.reason


def test_image_part_that_is_not_jpeg():
    body, ctype = build_multipart(alert(), {"licensePlatePicture.jpg": b"GIF89a..."})
    result = parse_hikvision(body.replace(b"Content-Type: image/jpeg", b"Content-Type: image/jpeg"), ctype)
    assert isinstance(result, Rejected) and "not a JPEG" in result.reason


def test_every_truncation_is_a_value_never_an_exception():
    body, ctype = build_multipart(alert(), {"licensePlatePicture.jpg": JPEG})
    complete_at = body.rindex(b"--MIME_boundary--") + len(b"--MIME_boundary--")  # the CRLF after it is optional
    for n in list(range(0, complete_at, 7)) + [complete_at - 1]:
        assert isinstance(parse_hikvision(body[:n], ctype), Rejected), n
    assert isinstance(parse_hikvision(body[:complete_at], ctype), PlateNotification)
