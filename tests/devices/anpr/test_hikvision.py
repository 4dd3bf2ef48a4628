import json

import pytest

from edge_agent.devices.anpr.hikvision import COUNTRY_INDEX, build_alert_xml, build_multipart, parse_hikvision
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


def test_a_picture_that_is_not_jpeg_is_dropped_and_the_read_kept():
    body, ctype = build_multipart(alert(), {"licensePlatePicture.jpg": b"GIF89a...", "detectionPicture.jpg": JPEG})
    note = parse_hikvision(body, ctype)
    assert isinstance(note, PlateNotification) and note.plate == "BG 123-AA"
    assert [(i.kind, i.jpeg) for i in note.images] == [("scene", JPEG)]
    assert note.warnings == ("picture 'licensePlatePicture.jpg' is not a JPEG; dropped",)


def test_every_truncation_is_a_value_never_an_exception():
    body, ctype = build_multipart(alert(), {"licensePlatePicture.jpg": JPEG})
    complete_at = body.rindex(b"--MIME_boundary--") + len(b"--MIME_boundary--")  # the CRLF after it is optional
    for n in list(range(0, complete_at, 7)) + [complete_at - 1]:
        assert isinstance(parse_hikvision(body[:n], ctype), Rejected), n
    assert isinstance(parse_hikvision(body[:complete_at], ctype), PlateNotification)


# --------------------------------------------------------------------------- encodings and entities

BARE = ("<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>{plate}</licensePlate></ANPR>"
        "</EventNotificationAlert>")
BOMB = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>' + BARE.format(plate="&a;")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-7", "cp1252", "shift_jis"])
def test_an_entity_is_refused_in_any_encoding(encoding):
    body = f'<?xml version="1.0" encoding="{encoding}"?>{BOMB}'.encode(encoding)
    result = parse_hikvision(body, "application/xml")
    assert isinstance(result, Rejected) and "DOCTYPE" in result.reason, result


@pytest.mark.parametrize("encoding, plate", [("utf-16", "ČA 123-ŽŠ"), ("utf-16-le", "ČA 123-ŽŠ"),
                                             ("utf-16-be", "ČA 123-ŽŠ"), ("utf-32", "ČA 123-ŽŠ"),
                                             ("iso-8859-2", "ČA 123-ŽŠ"), ("cp1251", "СА 1234 ВХ"),
                                             ("shift_jis", "品川 300 あ 12-34")])
def test_documents_in_other_encodings_are_read(encoding, plate):
    body = f'<?xml version="1.0" encoding="{encoding}"?>{BARE.format(plate=plate)}'.encode(encoding)
    note = parse_hikvision(body, "application/xml")
    assert isinstance(note, PlateNotification) and note.plate == plate, note


def test_the_content_type_charset_and_the_byte_order_mark_say_the_encoding():
    text = BARE.format(plate="ČA 123")
    assert parse_hikvision(text.encode("iso-8859-2"), "text/xml; charset=ISO-8859-2").plate == "ČA 123"
    assert parse_hikvision(b"\xef\xbb\xbf" + text.encode(), "application/xml").plate == "ČA 123"
    bomb = BOMB.encode("utf-16")  # a BOM, no declaration, and a charset that lies
    assert "DOCTYPE" in parse_hikvision(bomb, "text/xml; charset=utf-8").reason


@pytest.mark.parametrize("declared, reason", [("nope", "unknown encoding"), ("base64", "not a character encoding"),
                                              ("utf-32", "not valid")])
def test_unknown_or_impossible_encodings_are_refused_with_reason(declared, reason):
    body = f'<?xml version="1.0" encoding="{declared}"?>{BARE.format(plate="AB123")}'.encode()
    result = parse_hikvision(body, "application/xml")
    assert isinstance(result, Rejected) and reason in result.reason, result


def test_deeply_nested_json_is_refused():
    for body in (b"[" * 100_000, b'{"a":' * 40_000, b'{"eventType": "ANPR", "ANPR": ' + b"[" * 50_000):
        result = parse_hikvision(body, "application/json")
        assert isinstance(result, Rejected) and result.reason == "JSON nested too deeply"


# --------------------------------------------------------------------------- fields the firmware gets wrong


@pytest.mark.parametrize("index, country", [("5", "ITA"), ("27", "SRB"), ("23", "MKD"), ("14", "BGR"), ("0", "")])
def test_country_index_is_the_vendors_table(index, country):
    body = alert(country="").replace(b"<licensePlate>", f"<country>{index}</country><licensePlate>".encode())
    note = parse_hikvision(body, "application/xml")
    assert (note.country, note.country_raw, note.warnings) == (country, "", ())
    assert COUNTRY_INDEX[27] == "SRB"


@pytest.mark.parametrize("index", ["77", "255", "9" * 40])
def test_an_index_outside_the_table_is_kept_raw_never_a_country(index):
    body = alert(country="").replace(b"<licensePlate>", f"<country>{index}</country><licensePlate>".encode())
    note = parse_hikvision(body, "application/xml")
    assert note.plate == "BG 123-AA" and note.country == ""
    assert note.country_raw == index[:20] and "not in Hikvision's country table" in note.warnings[0]


def test_country_names_and_codes_are_kept_as_sent():
    body = alert(country="").replace(b"<licensePlate>", b"<country>Poland</country><licensePlate>")
    assert parse_hikvision(body, "application/xml").country == "Poland"
    assert parse_hikvision(alert(country="SRB"), "application/xml").country == "SRB"


@pytest.mark.parametrize("value", ["2024-01-22T11:46:3100:00", "yesterday", "2024-13-45T99:99:99"])
def test_a_malformed_datetime_is_flagged_and_the_plate_kept(value):
    body = alert().replace(b"</ipAddress>", f"</ipAddress><dateTime>{value}</dateTime>".encode())
    note = parse_hikvision(body, "application/xml")
    assert isinstance(note, PlateNotification) and note.plate == "BG 123-AA"
    assert note.at is None
    assert note.warnings == (f"dateTime {value!r} is not ISO 8601; the receive time stands in",)


def part(name: str, filename: str, data: bytes, content_id: str = "") -> bytes:
    cid = f"Content-ID: {content_id}\r\n" if content_id else ""
    return (f'--b\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: image/jpeg\r\n{cid}\r\n").encode() + data + b"\r\n"


def test_pictures_named_by_id_are_filed_by_their_file_name_or_the_documents_list():
    xml = alert(pictures=()).replace(b"</ANPR>", b"<pictureInfoList><pictureInfo><fileName>p-17.jpg</fileName>"
                                     b"<type>vehiclePicture</type><pId>17</pId></pictureInfo></pictureInfoList></ANPR>")
    body = (b'--b\r\nContent-Disposition: form-data; name="anpr.xml"\r\nContent-Type: application/xml\r\n\r\n'
            + xml + b"\r\n"
            + part("1001", "licensePlatePicture.jpg", JPEG)
            + part("1002", "detectionPicture.jpg", JPEG)
            + part("17", "p-17.jpg", JPEG)
            + part("1004", "x.jpg", JPEG, content_id="<licensePlatePicture>")
            + part("1005", "1005.jpg", JPEG)
            + b"--b--\r\n")
    note = parse_hikvision(body, "multipart/form-data; boundary=b")
    assert [(i.kind, i.name) for i in note.images] == [
        ("plate", "licensePlatePicture.jpg"), ("scene", "detectionPicture.jpg"), ("vehicle", "p-17.jpg"),
        ("plate", "x.jpg"), ("scene", "1005.jpg")]
