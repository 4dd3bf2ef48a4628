"""Camera vendors are a table: a new one is its parser plus one line, and a site file that
names one this agent does not know is refused with the key path and line."""

from __future__ import annotations

import http.client

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.notification import Ignored, PlateNotification
from edge_agent.devices.anpr.vendors import VENDORS, VendorSpec, camera_problems, vendor_for
from edge_agent.errors import ConfigError
from edge_agent.models import PlateRead, Rejected
from edge_agent.site import load_site


def post(port: int, path: str, body: bytes, content_type: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        connection.close()


def parse_acme(body: bytes, content_type: str) -> PlateNotification | Ignored | Rejected:
    """A made-up vendor's push: 'ACME|<plate>|<confidence %>' as plain text."""
    parts = body.decode("ascii", "replace").split("|")
    if len(parts) != 3 or parts[0] != "ACME":
        return Rejected(source="acme", reason="not an ACME event", raw=body[:80].decode("ascii", "replace"))
    if parts[1] == "heartbeat":
        return Ignored("heartbeat")
    return PlateNotification(plate=parts[1], confidence=int(parts[2]) / 100, source_format="acme")


@pytest.fixture
def acme(monkeypatch):
    """The one line a new vendor adds to the table (here for this test only, first in
    order so that it is asked before the generic fallback)."""
    spec = VendorSpec("acme", "ACME text push", parse_acme, lambda ct, body: body.startswith(b"ACME|"))
    monkeypatch.setattr("edge_agent.devices.anpr.vendors.VENDORS", {"acme": spec, **VENDORS})
    monkeypatch.setattr("edge_agent.devices.anpr.listener.VENDORS", {"acme": spec, **VENDORS})
    return spec


def test_a_new_vendor_is_one_parser_and_one_line(start_listener, acme):
    camera = CameraConfig(id="L1-acme", role="tractor", vendor="acme")
    listener, sink = start_listener([camera])
    assert post(listener.port, "/anpr/L1-acme", b"ACME|BG 123-AA|87", "text/plain")[0] == 200
    assert post(listener.port, "/anpr/L1-acme", b"ACME|heartbeat|0", "text/plain") == (200, "ignored: heartbeat")
    status, reason = post(listener.port, "/anpr/L1-acme", b"garbage", "text/plain")
    assert (status, reason) == (400, "not an ACME event")
    # On the lane's shared path the body says whose it is, and the one camera of that vendor takes it.
    assert post(listener.port, "/anpr", b"ACME|KS 01-123|90", "text/plain")[0] == 200
    reads = [r for r in sink.posted if isinstance(r, PlateRead)]
    assert [(r.text, r.camera, r.confidence) for r in reads] == [("BG123AA", "L1-acme", 0.87),
                                                                  ("KS01123", "L1-acme", 0.9)]
    assert listener.health()["ignored"] == 1 and listener.health()["rejected"] == 1


def test_bodies_on_the_shared_path_go_to_the_vendor_that_recognises_them():
    assert vendor_for("application/xml", b"<EventNotificationAlert/>").name == "hikvision"
    assert vendor_for("multipart/form-data; boundary=x", b"--x").name == "hikvision"
    assert vendor_for("application/json", b'{"eventType": "ANPR"}').name == "hikvision"
    assert vendor_for("application/json", b'{"Picture": {"SnapInfo": {}}}').name == "dahua"
    assert vendor_for("application/json", b'{"Active": true, "DeviceID": "ITC-1"}').name == "dahua"
    assert vendor_for("application/json", b'{"plate": "BG123AA"}').name == "generic"  # the fallback


def test_pull_modes_come_from_the_vendor_and_snapshot_from_any():
    assert VENDORS["hikvision"].pull_modes == ("alert_stream", "snapshot")
    assert VENDORS["generic"].pull_modes == ("snapshot",)
    assert VENDORS["dahua"].pull_modes == ("snapshot",)


def lanes_with(**camera) -> list:
    from edge_agent.config import LaneConfig

    return [LaneConfig(id="L1", cameras=[CameraConfig(id="c1", **camera)])]


@pytest.mark.parametrize(("camera", "problem"), [
    ({"vendor": "acme"}, (("lanes", 0, "cameras", 0, "vendor"),
                          "unknown camera vendor 'acme'; known: hikvision, dahua, generic")),
    ({"vendor": "generic", "mode": "pull", "url": "http://cam/"},
     (("lanes", 0, "cameras", 0, "pull_mode"),
      "generic cameras cannot be pulled as 'alert_stream'; they offer snapshot")),
    ({"vendor": "hikvision", "mode": "pull"}, (("lanes", 0, "cameras", 0, "url"),
                                               "a pulled camera needs the url to fetch from")),
    ({"vendor": "generic", "mode": "pull", "pull_mode": "snapshot", "url": "http://cam/snap.jpg"},
     (("lanes", 0, "cameras", 0, "recognition"), 'snapshot polling reads plates itself: set recognition = "local"')),
])
def test_camera_problems_name_the_key(camera, problem):
    assert camera_problems(lanes_with(**camera)) == [problem]


def test_cameras_the_agent_can_serve_have_no_problems():
    assert camera_problems(lanes_with(vendor="hikvision")) == []
    assert camera_problems(lanes_with(vendor="hikvision", mode="pull", url="http://cam/alert")) == []
    assert camera_problems(lanes_with(vendor="generic", mode="pull", pull_mode="snapshot", recognition="local",
                                      url="http://cam/snap.jpg")) == []


def test_a_site_file_naming_an_unknown_vendor_is_refused_with_its_line(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[site]\nid = "x"\nregion = "y"\n[policy]\nrandom_secret = "test-site-secret-0123456789"\n'
                    '[[lanes]]\nid = "L1"\n[[lanes.cameras]]\nid = "c1"\n'
                    'vendor = "axis"\n')
    with pytest.raises(ConfigError) as refused:
        load_site(site)
    assert refused.value.problems == [
        "line 10: lanes[0].cameras[0].vendor: unknown camera vendor 'axis'; known: hikvision, dahua, generic"]


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode("utf-8")),
                      st.integers(0, 5000).map(lambda n: b"[" * n + b'{"Picture": {"Plate": {}}}')),
       content_type=st.one_of(st.sampled_from(["application/xml", "application/json", "text/xml; charset=utf-16",
                                               "multipart/form-data; boundary=b", "text/plain", "",
                                               "text/xml; charset=base64"]), st.text(max_size=60)))
def test_no_vendor_parser_raises_whatever_the_bytes(body, content_type):
    for spec in VENDORS.values():
        spec.recognises(content_type, body)
        assert isinstance(spec.parse_push(body, content_type), (PlateNotification, Ignored, Rejected))
