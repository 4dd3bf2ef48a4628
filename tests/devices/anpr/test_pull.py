import logging

import pytest
from testkit.waiting import wait_for

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.hikvision import AlertStream, build_alert_xml
from edge_agent.devices.anpr.multipart import MultipartError
from edge_agent.devices.anpr.notification import Ignored, PlateNotification
from edge_agent.devices.anpr.pull import PullCamera
from edge_agent.devices.anpr.vendors import VENDORS
from edge_agent.models import PlateRole, Rejected
from edge_agent.simulators.anpr_camera import PolledCameraSimulator

JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 50 + b"\xff\xd9"
LOGGER = "edge_agent.devices.anpr.pull"


def messages(caplog, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(event + " ")]


def part(ctype: str, body: bytes, name: str = "") -> bytes:
    disposition = f'Content-Disposition: attachment; filename="{name}"\r\n' if name else ""
    return f"--boundary\r\nContent-Type: {ctype}\r\n{disposition}Content-Length: {len(body)}\r\n\r\n".encode() + \
        body + b"\r\n"


STREAM = (part("application/xml", build_alert_xml("BG 123-AA", confidence_pct=80))
          + part("image/jpeg", JPEG, "licensePlatePicture.jpg")
          + part("application/xml", build_alert_xml("", event_type="videoloss", event_state="inactive"))
          + part("application/xml", b"<EventNotificationAlert><eventType>ANPR")
          + part("application/xml", build_alert_xml("SK 1234 AB")))


def test_alert_stream_whole_and_byte_by_byte_agree():
    whole = AlertStream("multipart/mixed; boundary=boundary")
    results = whole.feed(STREAM) + whole.flush()
    single = AlertStream("multipart/mixed; boundary=boundary")
    one_by_one = []
    for i in range(len(STREAM)):
        one_by_one += single.feed(STREAM[i:i + 1])
    one_by_one += single.flush()
    kinds = [type(r) for r in results]
    assert kinds == [PlateNotification, Ignored, Rejected, PlateNotification]
    assert [type(r) for r in one_by_one] == kinds
    assert results[0].plate == "BG 123-AA" and results[0].images[0].kind == "plate"
    assert results[0].images[0].jpeg == JPEG
    assert results[3].plate == "SK 1234 AB" and results[3].images == ()
    assert whole.rejected == 1


def test_alert_stream_needs_a_boundary():
    with pytest.raises(MultipartError):
        AlertStream("multipart/mixed")


@pytest.fixture
def polled_camera():
    started = []

    def start(**kwargs) -> PolledCameraSimulator:
        sim = PolledCameraSimulator(**kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def test_alert_stream_camera_with_digest_and_reconnect(start_listener, polled_camera):
    sim = polled_camera(seed=1, username="admin", password="12345abc")
    cam = CameraConfig(id="L1-pull", role="trailer", vendor="hikvision", mode="pull", pull_mode="alert_stream",
                       url=sim.stream_url, username="admin", password="12345abc")
    listener, sink = start_listener([cam])
    wait_for(lambda: sim.connected_streams() == 1)
    sim.emit("NS 4821-KT", confidence_pct=88)
    wait_for(lambda: len(sink.posted) == 1)
    read = sink.posted[0]
    assert (read.text, read.role, read.camera, read.confidence) == ("NS4821KT", PlateRole.TRAILER, "L1-pull", 0.88)
    wait_for(lambda: len(sink.images) == 1)
    assert sink.images[0][3] == "plate" and sink.images[0][2] == read.id
    # Garbage in the stream is counted; the stream goes on.
    sim.emit("", raw=part("application/xml", b"<nonsense"))
    sim.emit("PG AB 123")
    wait_for(lambda: len(sink.posted) == 2)
    assert sink.posted[1].text == "PGAB123"
    # The camera reboots: the puller reconnects by itself.
    sim.drop_streams()
    wait_for(lambda: listener.health()["pull"][0]["connects"] >= 2 and sim.connected_streams() == 1)
    sim.emit("BG 999-ZZ")
    wait_for(lambda: len(sink.posted) == 3)
    health = listener.health()["pull"][0]
    assert health["rejected"] == 1 and health["accepted"] == 3


def test_alert_stream_with_wrong_password_posts_nothing(start_listener, polled_camera):
    sim = polled_camera(seed=1, username="admin", password="right")
    cam = CameraConfig(id="L1-pull", vendor="hikvision", mode="pull", url=sim.stream_url, username="admin",
                       password="wrong")
    listener, sink = start_listener([cam])
    wait_for(lambda: listener.health()["pull"][0]["errors"] >= 1)
    assert sim.connected_streams() == 0 and sink.posted == []
    assert listener.health()["pull"][0]["connected"] is False


def test_snapshot_camera_reads_locally_once_per_truck(start_listener, polled_camera, recognizer):
    sim = polled_camera(seed=2)
    cam = CameraConfig(id="L1-snap", mode="pull", pull_mode="snapshot", recognition="local",
                       url=sim.snapshot_url, poll_interval_s=0.05)
    sim.show("KG 512-MT")
    listener, sink = start_listener([cam], recognizer=recognizer)
    wait_for(lambda: len(sink.posted) >= 1, timeout_s=60)
    wait_for(lambda: listener.health()["pull"][0]["connects"] >= 3, timeout_s=60)  # polled again, same truck
    assert [r.text for r in sink.posted] == ["KG512MT"]
    sim.show("SU 733-PR")
    wait_for(lambda: len(sink.posted) == 2, timeout_s=60)
    assert sink.posted[1].text == "SU733PR" and sink.posted[1].camera == "L1-snap"


def test_a_camera_that_goes_away_is_logged_once_on_loss_and_once_on_return(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    sim = PolledCameraSimulator(seed=3).start()
    port = sim.port
    cam = CameraConfig(id="L1-pull", vendor="hikvision", mode="pull", url=sim.stream_url, reconnect_max_s=0.2)
    accepted: list[str] = []

    def accept(camera, note, **_) -> tuple[int, str]:
        accepted.append(note.plate)
        return 200, ""

    puller = PullCamera(cam, accept, VENDORS["hikvision"]).start()
    try:
        wait_for(lambda: sim.connected_streams() == 1)
        sim.stop()  # the camera is switched off: its port refuses ...
        wait_for(lambda: puller.health()["errors"] >= 4)  # ... the lost stream and three failed retries
        assert puller.health()["connected"] is False and puller.health()["reconnects"] == 0
        sim = PolledCameraSimulator(seed=3, port=port).start()  # ... until it is back on the same address
        wait_for(lambda: sim.connected_streams() == 1 and puller.health()["connected"])
        sim.emit("BG 777-AB")
        wait_for(lambda: accepted == ["BG 777-AB"])
        assert puller.health()["reconnects"] == 1 and puller.health()["connects"] == 2
        assert len(messages(caplog, "anpr_pull_connected")) == 1
        assert len(messages(caplog, "anpr_pull_lost")) == 1
        assert len(messages(caplog, "anpr_pull_recovered")) == 1
    finally:
        puller.stop()
        sim.stop()
