import contextlib
import http.client
import json
import socket
import urllib.request

import pytest

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.generic import build_generic
from edge_agent.devices.anpr.hikvision import build_alert_xml
from edge_agent.devices.anpr.listener import AnprListener, listen_address
from edge_agent.errors import ConfigError
from edge_agent.models import PlateRead, PlateRole
from edge_agent.simulators.anpr_camera import AnprCameraSimulator

FRONT = CameraConfig(id="L1-front", role="tractor", vendor="hikvision")
REAR = CameraConfig(id="L1-rear", role="trailer", vendor="generic")


def raw_post(listener: AnprListener, path: str, body: bytes, content_type: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize("document, multipart", [("xml", True), ("json", True), ("xml", False)])
def test_hikvision_push_becomes_plate_read(start_listener, document, multipart):
    listener, sink = start_listener([FRONT, REAR])
    camera = AnprCameraSimulator(listener.url, "hikvision", "L1-front", seed=3, document=document,
                                 multipart=multipart)
    assert camera.push("BG 123-AA", role="tractor", ocr_errors=1, lane="L1", country="SRB") == 200
    (read,) = sink.posted
    assert isinstance(read, PlateRead)
    assert read.lane == "L1" and read.camera == "L1-front" and read.role == PlateRole.TRACTOR
    assert read.raw == camera.last.sent_text and read.raw != "BG 123-AA"  # one look-alike swapped
    assert read.text == camera.last.sent_text.replace(" ", "").replace("-", "")
    assert read.country == "SRB" and 0 < read.confidence < 1
    if multipart:
        assert [(i[0], i[1], i[2], i[3]) for i in sink.images] == [
            ("L1", "L1-front", read.id, "plate"), ("L1", "L1-front", read.id, "scene")]
        assert sink.images[1][4] == camera.last.scene_jpeg
    else:
        assert sink.images == []
    assert sink.payloads[0][2] == read.id and sink.payloads[0][4]


def test_generic_push_with_cyrillic_trailer(start_listener):
    listener, sink = start_listener([FRONT, REAR])
    camera = AnprCameraSimulator(listener.url, "generic", "L1-rear", seed=4)
    assert camera.push("СА 4047 ТХ", role="trailer", lane="L1", country="BG") == 200
    (read,) = sink.posted
    assert (read.text, read.raw, read.role, read.camera, read.country) == (
        "CA4047TX", "СА 4047 ТХ", PlateRole.TRAILER, "L1-rear", "BG")
    assert sink.images[0][3] == "scene" and sink.images[0][4][:2] == b"\xff\xd8"


def test_camera_named_in_payload_on_shared_path(start_listener):
    listener, sink = start_listener([FRONT, REAR])
    status, _ = raw_post(listener, "/anpr", build_generic("NI 987-KM", camera="L1-rear"), "application/json")
    assert status == 200 and sink.posted[0].camera == "L1-rear"
    # The only Hikvision camera of the lane takes an XML push on the root path.
    status, _ = raw_post(listener, "/", build_alert_xml("NI 111-KM", confidence_pct=90), "application/xml")
    assert status == 200 and sink.posted[1].camera == "L1-front"


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_authenticated_cameras(start_listener, auth):
    cam = CameraConfig(id="L1-front", role="tractor", vendor="hikvision", push_auth=auth, username="hik",
                       password="s3cret")
    listener, sink = start_listener([cam])
    good = AnprCameraSimulator(listener.url, "hikvision", "L1-front", seed=1, username="hik", password="s3cret")
    assert good.push("BG 123-AA") == 200
    assert good.push("BG 124-AA") == 200
    bad = AnprCameraSimulator(listener.url, "hikvision", "L1-front", seed=1, username="hik", password="guess")
    assert bad.push("BG 125-AA") == 401
    anonymous = AnprCameraSimulator(listener.url, "hikvision", "L1-front", seed=1)
    assert anonymous.push("BG 126-AA") == 401
    assert [r.text for r in sink.posted] == ["BG123AA", "BG124AA"]
    # Unauthenticated pushes on the shared path are refused outright on such a lane.
    status, _ = raw_post(listener, "/anpr", build_alert_xml("BG 127-AA"), "application/xml")
    assert status == 404 and len(sink.posted) == 2
    assert listener.health()["unauthorized"] >= 2


MALFORMED = [
    ("/anpr/L1-front", b"<EventNotificationAlert><eventType>ANPR", "application/xml", 400, "malformed XML"),
    ("/anpr/L1-front", b"--b\r\n\r\nxx", "multipart/form-data; boundary=b", 400, "closing boundary"),
    ("/anpr/L1-rear", b'{"plate": 5}', "application/json", 400, "plate"),
    ("/anpr/L1-rear", b'{"plate": "AB123", "lane": "L9"}', "application/json", 400, "lane"),
    ("/anpr/L1-rear", b'{"plate": "AB123", "camera": "L1-front"}', "application/json", 400, "camera"),
    ("/anpr/L1-rear", b'{"plate": "---"}', "application/json", 400, "no letters or digits"),
    ("/anpr/L1-rear", b'{"plate": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}', "application/json", 400, "1..20"),
    ("/anpr/nosuch", b'{"plate": "AB123"}', "application/json", 404, "unknown camera"),
    ("/anpr", b'{"plate": "AB123"}', "application/json", 400, "camera not named"),
    ("/elsewhere", b"{}", "application/json", 404, "not found"),
]


def test_malformed_pushes_get_reason_and_are_counted(start_listener):
    listener, sink = start_listener([FRONT, REAR, CameraConfig(id="L1-x", vendor="generic")])
    for path, body, ctype, status, reason in MALFORMED:
        got_status, text = raw_post(listener, path, body, ctype)
        assert (got_status, reason in text) == (status, True), (path, body, text)
    assert sink.posted == []
    health = listener.health()
    assert health["rejected"] == len(MALFORMED) - 1  # the wrong path is not a camera's push
    assert health["cameras"]["L1-rear"]["rejected"] == 5
    # After all that, the listener still works.
    assert AnprCameraSimulator(listener.url, "generic", "L1-rear", seed=1).push("AB 123 CD") == 200


def test_garbage_on_the_socket_does_not_stop_the_listener(start_listener):
    listener, sink = start_listener([FRONT, REAR])
    for junk in (b"\x00\xff" * 100, b"POST /anpr/L1-rear HTTP/1.1\r\nContent-Length: 99999\r\n\r\nshort",
                 b"POST /anpr/L1-rear HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                s.recv(4096)
    status, _ = raw_post(listener, "/anpr/L1-rear", b'{"plate": "AB 123 CD"}', "application/json",
                         {"Content-Length": str(10**9)})
    assert status == 413
    assert AnprCameraSimulator(listener.url, "generic", "L1-rear", seed=2).push("AB 123 CD") == 200
    assert [r.text for r in sink.posted] == ["AB123CD"]


def test_heartbeat_is_answered_and_not_posted(start_listener):
    listener, sink = start_listener([FRONT])
    status, text = raw_post(listener, "/anpr/L1-front", build_alert_xml("", event_type="videoloss",
                                                                         event_state="inactive"), "application/xml")
    assert status == 200 and "ignored" in text and sink.posted == []
    assert listener.health()["ignored"] == 1


def test_low_confidence_reads_are_dropped_and_counted(start_listener):
    cam = CameraConfig(id="L1-rear", vendor="generic", role="trailer", min_confidence=0.5)
    listener, sink = start_listener([cam])
    assert raw_post(listener, "/anpr/L1-rear", build_generic("AB 123 CD", confidence=0.3), "application/json")[0] == 200
    assert sink.posted == [] and listener.health()["low_confidence"] == 1


def test_a_failing_consumer_does_not_break_the_push(start_listener):
    def broken_post(_event):
        raise RuntimeError("core queue gone")

    listener = AnprListener("L1", [REAR], broken_post, on_image=lambda *a: 1 / 0).start()
    try:
        assert AnprCameraSimulator(listener.url, "generic", "L1-rear", seed=2).push("AB 123 CD") == 200
    finally:
        listener.stop()


def test_health_over_http(start_listener):
    listener, _ = start_listener([FRONT, REAR])
    AnprCameraSimulator(listener.url, "generic", "L1-rear", seed=2).push("AB 123 CD")
    with urllib.request.urlopen(listener.url + "health", timeout=30) as response:
        health = json.load(response)
    assert health["accepted"] == 1 and health["cameras"]["L1-rear"]["last_plate"] == "AB123CD"
    assert health["running"] is True


def test_local_recognition_camera_reads_the_picture(start_listener, recognizer):
    cam = CameraConfig(id="L1-video", vendor="generic", role="tractor", recognition="local")
    listener, sink = start_listener([cam], recognizer=recognizer)
    camera = AnprCameraSimulator(listener.url, "generic", "L1-video", seed=5)
    # The camera's own text is deliberately wrong: the listener must read the image itself.
    assert camera.push("NS 4821-KT", ocr_errors=3) == 200
    assert sink.posted[0].text == "NS4821KT"
    status, text = raw_post(listener, "/anpr/L1-video", build_generic("AB 123 CD"), "application/json")
    assert status == 400 and "needs an image" in text


def test_stop_frees_the_port():
    listener = AnprListener("L1", [REAR], lambda e: None).start()
    port = listener.port
    listener.stop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_listen_address_from_cameras():
    a = CameraConfig(id="a", listen_port=8081, listen_host="0.0.0.0")
    b = CameraConfig(id="b", vendor="hikvision")
    assert listen_address([a, b]) == {"host": "0.0.0.0", "port": 8081}
    assert listen_address([b]) == {}
    with pytest.raises(ConfigError):
        listen_address([a, CameraConfig(id="c", listen_port=8082)])


def test_the_sites_plate_countries_reach_local_recognition(tmp_path):
    """[site] plate_countries is what the agent's listeners read plates with, and every
    home shares the one engine the process loads."""
    from gpiozero.pins.mock import MockFactory

    from edge_agent.agent import Agent
    from edge_agent.config import AgentConfig, GateConfig, LaneConfig, MetricsConfig, PolicyConfig, SiteConfig
    from edge_agent.devices.anpr.recognition import shared_local_recognizer
    from edge_agent.simulators.barrier import simulated_barrier

    config = AgentConfig(
        site=SiteConfig(id="us-test", region="south", data_dir=tmp_path, plate_countries=("USA",)),
        lanes=[LaneConfig(id="L1", gate=GateConfig(pin_factory="mock"),
                          cameras=[CameraConfig(id="L1-video", vendor="generic", recognition="local")])],
        policy=PolicyConfig(random_secret="plate-countries-test-01"),
        metrics=MetricsConfig(port=0),
    )
    agent = Agent(config, pin_factory=MockFactory(), gate_equipment=simulated_barrier()).start()
    try:
        (listener,) = [d for d in agent.devices if isinstance(d, AnprListener)]
        recognizer = listener.local_recognizer()
        assert recognizer.grammar.home == {"USA"}
        assert recognizer.engine() is shared_local_recognizer().engine()
    finally:
        agent.stop()
