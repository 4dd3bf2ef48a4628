"""Dahua ITC ITSAPI snapshot pushes: documented bodies (good, odd, hostile) and pushes
through a real listener, in the vendor table as one line."""

from __future__ import annotations

import base64
import http.client
import json
from datetime import datetime

import pytest

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.dahua import answer, build_keepalive, build_tollgate, parse_dahua
from edge_agent.devices.anpr.notification import Ignored, PlateNotification
from edge_agent.models import PlateRead, PlateRole, Rejected
from edge_agent.simulators.anpr_camera import AnprCameraSimulator

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
AT = datetime(2024, 1, 30, 14, 34, 12, 345000)


def snapshot(**kwargs) -> bytes:
    defaults = dict(confidence_pct=93, device_id="ITC-7", at=AT, vehicle_color="White", vehicle_type="Truck",
                    plate_jpeg=JPEG, scene_jpeg=JPEG + b"s", vehicle_jpeg=JPEG + b"v")
    return build_tollgate("BG123AA", **{**defaults, **kwargs})


def doc(picture: dict) -> bytes:
    return json.dumps({"Picture": picture}).encode()


def test_a_snapshot_with_plate_vehicle_and_pictures():
    note = parse_dahua(snapshot(), "application/json")
    assert isinstance(note, PlateNotification)
    assert (note.plate, note.confidence, note.camera, note.at, note.direction) == (
        "BG123AA", 0.93, "ITC-7", AT, "Obverse")
    assert (note.vehicle_color, note.vehicle_type, note.source_format) == ("White", "Truck", "dahua")
    assert [(i.kind, i.jpeg) for i in note.images] == [("plate", JPEG), ("scene", JPEG + b"s"),
                                                       ("vehicle", JPEG + b"v")]
    assert note.event_id == "ITC-7/2024-01-30 14:34:12.345" and note.warnings == ()


def test_the_documented_minimum_and_unknown_fields():
    body = doc({"Plate": {"PlateNumber": "NI 987-KM", "Extra": [1, 2]}, "Radar": {"Speed": 12},
                "SnapInfo": {"SnapTime": "2026-02-10 09:30:45", "DeviceID": "camera_01"}})
    note = parse_dahua(body, "application/json; charset=utf-8")
    assert (note.plate, note.confidence, note.at, note.images) == (
        "NI 987-KM", None, datetime(2026, 2, 10, 9, 30, 45), ())


@pytest.mark.parametrize("body", [build_keepalive("ITC-7"), b'{"Active": false, "DeviceID": "x"}'])
def test_keep_alives_are_ignored(body):
    assert isinstance(parse_dahua(body, "application/json"), Ignored)


@pytest.mark.parametrize("plate", ["", "Unknown", "无车牌", "-"])
def test_snapshots_without_a_plate_are_ignored(plate):
    assert isinstance(parse_dahua(doc({"Plate": {"PlateNumber": plate}}), "application/json"), Ignored)


def test_a_bad_time_or_picture_costs_only_itself():
    pictures = {"CutoutPic": {"Content": "not base64!"}, "NormalPic": {"Content": base64.b64encode(b"GIF89a").decode()},
                "VehiclePic": {"Content": base64.b64encode(JPEG).decode(), "PicName": "v.jpg"}}
    body = doc({"Plate": {"PlateNumber": "BG123AA"}, "SnapInfo": {"AccurateTime": "2024-01-30 14:34:1200:00"},
                **pictures})
    note = parse_dahua(body, "application/json")
    assert note.plate == "BG123AA" and note.at is None
    assert [(i.kind, i.name) for i in note.images] == [("vehicle", "v.jpg")]
    assert note.warnings == ("SnapInfo.AccurateTime '2024-01-30 14:34:1200:00' is not a time; "
                             "the receive time stands in", "CutoutPic is not base64; dropped",
                             "NormalPic is not a JPEG; dropped")


MALFORMED = [
    (b"", "application/json", "empty body"),
    (b"{", "application/json", "malformed JSON"),
    (b"[1]", "application/json", "not an object"),
    (b"[" * 100_000, "application/json", "nested too deeply"),
    (b'{"Picture": 5}', "application/json", "Picture is not an object"),
    (b'{"Picture": {"Plate": "BG123AA"}}', "application/json", "Picture.Plate is not an object"),
    (b'{"Picture": {"Plate": {"PlateNumber": "X"}, "SnapInfo": []}}', "application/json",
     "Picture.SnapInfo is not an object"),
    (b'{"Other": 1}', "application/json", "without Picture"),
    (doc({"Plate": {"PlateNumber": "X" * 41}}), "application/json", "longer than 40"),
    (doc({"Plate": {"PlateNumber": "AB1", "Confidence": "high"}}), "application/json", "not a number"),
    (doc({"Plate": {"PlateNumber": "AB1", "Confidence": 1e400}}), "application/json", "outside 0..100"),
    (doc({"Plate": {"PlateNumber": "AB1"}}), "application/xml", "not JSON"),
]


@pytest.mark.parametrize("body, ctype, reason", MALFORMED)
def test_malformed_bodies_are_rejected_with_reason(body, ctype, reason):
    result = parse_dahua(body, ctype)
    assert isinstance(result, Rejected) and reason in result.reason, result
    assert len(result.raw) < 300  # never the megabytes of base64 pictures


def test_the_answer_is_what_the_camera_reads():
    assert answer(200, "accepted x") == ("application/json", '{"Result": true, "Message": "accepted x"}')
    assert json.loads(answer(400, "malformed JSON")[1])["Result"] is False


# --------------------------------------------------------------------------- through a real listener


ITC = CameraConfig(id="L1-itc", role="tractor", vendor="dahua")


def test_a_dahua_push_becomes_a_plate_read(start_listener):
    listener, sink = start_listener([ITC, CameraConfig(id="L1-rear", role="trailer", vendor="generic")])
    camera = AnprCameraSimulator(listener.url, "dahua", "L1-itc", seed=5)
    assert camera.push("NS 4821-KT", role="tractor", ocr_errors=1) == 200
    assert json.loads(camera.last.reply) == {"Result": True, "Message": f"accepted {sink.posted[0].id}"}
    (read,) = sink.posted
    assert isinstance(read, PlateRead)
    assert (read.camera, read.role, read.raw) == ("L1-itc", PlateRole.TRACTOR, camera.last.sent_text)
    assert [(i[2], i[3]) for i in sink.images] == [(read.id, "plate"), (read.id, "scene")]
    assert sink.images[1][4] == camera.last.scene_jpeg
    assert camera.keep_alive() == 200 and listener.health()["ignored"] == 1
    # The only Dahua camera of the lane takes a snapshot on the shared path.
    status, _ = post(listener.port, "/anpr", build_tollgate("01 123-AB", confidence_pct=88), "application/json")
    assert status == 200 and sink.posted[1].camera == "L1-itc" and sink.posted[1].country == "RKS"


def test_a_refused_dahua_push_gets_result_false(start_listener):
    listener, sink = start_listener([ITC])
    status, text = post(listener.port, "/anpr/L1-itc", b'{"Picture": 5}', "application/json")
    assert status == 400 and json.loads(text) == {"Result": False, "Message": "Picture is not an object"}
    assert listener.health()["cameras"]["L1-itc"]["rejected"] == 1 and sink.posted == []


def post(port: int, path: str, body: bytes, content_type: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()
