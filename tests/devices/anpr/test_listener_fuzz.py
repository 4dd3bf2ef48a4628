"""Hypothesis over the listener's whole HTTP surface: arbitrary bodies, headers, framings,
encodings and nesting, sent over a real socket. Every request gets an answer (a status
line, never a 500) before the client's timeout, every refused push is counted, no parser
raises (the listener would answer 400 but count a parser failure), and the listener's threads
stay bounded."""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from testkit.waiting import wait_for

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.dahua import build_tollgate
from edge_agent.devices.anpr.hikvision import build_alert_xml, build_multipart
from edge_agent.devices.anpr.listener import AnprListener
from edge_agent.simulators.anpr_camera import AnprCameraSimulator

CAMERAS = [CameraConfig(id="L1-front", role="tractor", vendor="hikvision"),
           CameraConfig(id="L1-itc", role="tractor", vendor="dahua"),
           CameraConfig(id="L1-rear", role="trailer", vendor="generic")]
READ_TIMEOUT_S = 0.3
MAX_CONNECTIONS = 16
ANSWERS = {200, 400, 404, 408, 411, 413, 414, 431, 501, 503, 505}
JPEG = b"\xff\xd8\xff\xe0" + bytes(64) + b"\xff\xd9"
ENCODINGS = ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-7", "cp1252", "shift_jis", "iso-8859-2",
             "cp037", "nope", "base64"]

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
plates = st.one_of(st.sampled_from(["BG 123-AA", "01 123-AB", "СА 4047 ТХ", "", "unknown", "-"]),
                   st.text(max_size=50))


@st.composite
def xml_documents(draw) -> bytes:
    text = build_alert_xml(draw(plates).replace("<", "").replace("&", ""), confidence_pct=draw(
        st.integers(-5, 120)), country=draw(st.sampled_from(["", "SRB", "5", "77", "0"]))).decode("utf-8")
    text = text.split("?>", 1)[1]
    if draw(st.booleans()):  # the entity bomb, in whatever encoding comes next
        text = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>' + text.replace("<licensePlate>", "<licensePlate>&a;")
    if draw(st.booleans()):
        text = text.replace("<channelID>", f"<dateTime>{draw(header_text)}</dateTime><channelID>")
    encoding = draw(st.sampled_from(ENCODINGS))
    declared = draw(st.sampled_from([encoding, "UTF-8", "UTF-16", "Shift_JIS", None]))
    if declared:
        text = f'<?xml version="1.0" encoding="{declared}"?>' + text
    try:
        return text.encode(encoding, errors="replace")
    except LookupError:
        return text.encode("utf-8")


@st.composite
def nested_json(draw) -> bytes:
    depth = draw(st.integers(0, 3000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"Picture":', b"}")]))
    inner = draw(st.sampled_from([b"1", b'{"plate": "AB123"}', b'{"eventType": "ANPR", "ANPR": {}}']))
    closing = closer * depth if draw(st.booleans()) else b""
    return opener * depth + inner + closing


@st.composite
def multipart_bodies(draw) -> tuple[bytes, str]:
    document = draw(st.one_of(xml_documents(), nested_json(), st.binary(max_size=200)))
    pictures = draw(st.dictionaries(st.sampled_from(["licensePlatePicture.jpg", "detectionPicture.jpg", "123.jpg",
                                                     "x"]), st.one_of(st.just(JPEG), st.binary(max_size=50)),
                                    max_size=3))
    body, ctype = build_multipart(document, pictures, boundary=draw(st.sampled_from(["b", "MIME_boundary"])))
    cut = draw(st.integers(0, len(body)))
    return (body if draw(st.booleans()) else body[:cut]), ctype


@st.composite
def requests(draw) -> tuple[bytes, bool, str, str]:
    """(bytes to send, whether to stall rather than half-close, method, path)."""
    method = draw(st.sampled_from(["POST"] * 20 + ["GET", "PUT", "HEAD", "P\x00ST"]))
    if draw(st.integers(0, 9)):
        path = draw(st.sampled_from(["/anpr/L1-front", "/anpr/L1-itc", "/anpr/L1-rear"] * 4
                                    + ["/anpr", "/", "/anpr/nosuch", "/health", "/anpr/a/b"]))
    else:
        path = draw(st.from_regex(r"\A/[\x21-\x7e]{0,30}\Z"))
    kind = draw(st.sampled_from(["binary", "xml", "json", "multipart", "dahua"]))
    content_type = draw(st.sampled_from(["application/xml", "text/xml; charset=utf-16", "application/json",
                                         "multipart/form-data; boundary=b", "text/plain", "",
                                         "application/xml; charset=nope"]))
    if kind == "binary":
        body = draw(st.binary(max_size=600))
    elif kind == "xml":
        body = draw(xml_documents())
    elif kind == "json":
        body = draw(nested_json())
    elif kind == "dahua":
        body = build_tollgate(draw(plates), confidence_pct=draw(st.integers(-5, 120)),
                              plate_jpeg=draw(st.sampled_from([JPEG, None])))
        content_type = "application/json"
    else:
        body, content_type = draw(multipart_bodies())
    headers = [f"Content-Type: {content_type}"] if content_type else []
    headers += [f"{name}: {value}" for name, value in draw(st.lists(st.tuples(
        st.sampled_from(["X-Camera", "Expect", "Authorization", "Connection", "Host", "Content-Encoding"]),
        header_text), max_size=3))]
    framing = draw(st.sampled_from(["length"] * 5 + ["chunked", "chunked", "none", "short", "long", "twice",
                                                     "junk"]))
    if framing == "chunked":
        sizes = draw(st.lists(st.integers(1, 300), max_size=4))
        chunks, rest = [], body
        for size in sizes:
            piece, rest = rest[:size], rest[size:]
            if piece:
                chunks.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        if rest:
            chunks.append(f"{len(rest):x}\r\n".encode() + rest + b"\r\n")
        payload = b"".join(chunks) + (b"0\r\n\r\n" if draw(st.booleans()) else b"")
        headers.append("Transfer-Encoding: chunked")
    else:
        payload = body
        length = {"length": len(body), "short": max(0, len(body) - 5), "long": len(body) + 50}.get(framing)
        if length is not None:
            headers.append(f"Content-Length: {length}")
        elif framing == "twice":
            headers += [f"Content-Length: {len(body)}", f"Content-Length: {len(body) + 1}"]
        elif framing == "junk":
            headers.append(f"Content-Length: {draw(header_text)}")
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    data = head.encode("latin-1", errors="replace") + payload
    stall = draw(st.integers(0, 24)) == 0  # now and then the client stops sending and waits
    return data, stall, method, path


def exchange(port: int, data: bytes, stall: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        with contextlib.suppress(OSError):  # the listener may have answered and closed already
            s.sendall(data)
            if not stall:
                s.shutdown(socket.SHUT_WR)
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                received += chunk
    return bytes(received)


def counted(health: dict) -> int:
    return sum(health[k] for k in ("accepted", "rejected", "ignored", "low_confidence", "unauthorized"))


@pytest.fixture(scope="module")
def fuzzed():
    """One listener for every example (Hypothesis calls the test many times), and the
    thread count before any request."""
    listener = AnprListener("L1", CAMERAS, lambda event: None, read_timeout_s=READ_TIMEOUT_S,
                            max_connections=MAX_CONNECTIONS).start()
    yield listener, threading.active_count()
    listener.stop()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=requests())
def test_every_request_is_answered_counted_and_threads_stay_bounded(fuzzed, request):
    listener, baseline_threads = fuzzed
    data, stall, method, path = request
    before = listener.health()
    answer = exchange(listener.port, data, stall)  # a socket timeout here fails the test: no answer
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    status = int(answer[9:12])
    assert status in ANSWERS, answer[:300]
    event(f"answered {status}")
    after = listener.health()
    # Not a camera's push, so not counted: a path outside /anpr, and reading /health.
    uncounted = (status == 404 and b"\r\n\r\nnot found" in answer) or (method == "GET" and status == 200)
    if status != 200 and not uncounted:
        assert after["rejected"] > before["rejected"], answer[:300]
    if status == 200 and method == "POST":
        assert counted(after) > counted(before), answer[:300]
    assert (after["parser_failures"], after["errors"]) == (before["parser_failures"], before["errors"]), \
        "a parser or the handler raised (see the logged traceback)"
    assert threading.active_count() <= baseline_threads + MAX_CONNECTIONS
    assert after["running"]


def test_after_the_fuzz_the_listener_still_takes_a_good_push(fuzzed):
    listener, _ = fuzzed
    for data in (b"[" * 100_000, json.dumps({"plate": "x" * 100}).encode()):
        exchange(listener.port, b"POST /anpr/L1-rear HTTP/1.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data, stall=False)
    wait_for(lambda: listener.health()["connections"] == 0, what="every fuzz connection to end")
    assert AnprCameraSimulator(listener.url, "dahua", "L1-itc", seed=9).push("BG 123-AA") == 200
