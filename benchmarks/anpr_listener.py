"""ANPR listener under slow clients: a camera's push answered while uploads stall, side by side.

Each figure is the time from connecting to the last byte of the answer for one good
Hikvision push (multipart: the ANPR XML, a plate crop and a 1280x720 scene JPEG, rendered
once before timing), over loopback to a real listener:

- baseline: no other client;
- 50 stalled in headers: 50 connections that sent half their headers and stopped, each
  holding a connection thread until its request deadline (the issue's slow clients);
- 50 stalled in bodies: 50 uploads to the lane's shared path that sent their headers and
  part of their body (the per-camera cap reads 4 of them; the rest are refused at once);

and, against the listener's `read_timeout_s`, how long a stalled upload holds its thread
before it is answered 408. The issue's budget for the good push is one second.

    python benchmarks/anpr_listener.py [--runs 200] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import random
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.hikvision import build_alert_xml, build_multipart
from edge_agent.devices.anpr.listener import AnprListener
from edge_agent.simulators.anpr_camera import encode_jpeg, render_plate, render_scene

CAMERAS = [CameraConfig(id="L1-front", role="tractor", vendor="hikvision"),
           CameraConfig(id="L1-rear", role="trailer", vendor="generic")]
STALLED = 50
BUDGET_S = 1.0


def good_push() -> tuple[bytes, str]:
    rng = random.Random(1)
    scene, crop = render_scene(render_plate("BG 123-AA", "SRB", rng), rng)
    pictures = {"licensePlatePicture.jpg": encode_jpeg(crop, 92), "detectionPicture.jpg": encode_jpeg(scene)}
    xml = build_alert_xml("BG 123-AA", confidence_pct=93, country="SRB", pictures=tuple(pictures))
    return build_multipart(xml, pictures)


def push_times(listener: AnprListener, body: bytes, content_type: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=30)
        try:
            connection.request("POST", "/anpr/L1-front", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        out.append(time.perf_counter() - start)
        if response.status != 200:
            raise RuntimeError(f"the good push was answered {response.status}")
    return out


def wait(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the listener did not reach the expected state")
        time.sleep(0.01)


def stall(listener: AnprListener, data: bytes, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", listener.port), timeout=30)
        s.sendall(data)
        held.append(s)
    return held


def scenario(name: str, runs: int, body: bytes, content_type: str, stalled_data: bytes | None = None,
             held_connections: int = 0) -> list[float]:
    listener = AnprListener("L1", CAMERAS, lambda event: None, read_timeout_s=120.0).start()
    held: list[socket.socket] = []
    try:
        push_times(listener, body, content_type, 3)  # warm up
        if stalled_data is not None:
            held = stall(listener, stalled_data, STALLED)
            wait(lambda: listener.health()["connections"] >= held_connections)
        times = push_times(listener, body, content_type, runs)
        if stalled_data is not None and listener.health()["timeouts"]:
            raise RuntimeError("a stalled upload timed out during the measurement")
        return times
    finally:
        for s in held:
            s.close()
        listener.stop()


def time_to_408(read_timeout_s: float, runs: int) -> list[float]:
    listener = AnprListener("L1", CAMERAS, lambda event: None, read_timeout_s=read_timeout_s).start()
    out = []
    try:
        for _ in range(runs):
            with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as s:
                start = time.perf_counter()
                s.sendall(b"POST /anpr/L1-rear HTTP/1.1\r\nContent-Type: application/json\r\nContent-Le")
                answer = s.recv(4096)
                out.append(time.perf_counter() - start)
            if not answer.startswith(b"HTTP/1.1 408"):
                raise RuntimeError(f"a stalled upload was answered {answer[:20]!r}")
    finally:
        listener.stop()
    return out


def summary(name: str, values: list[float], baseline: list[float] | None = None, budget_s: float | None = None) -> None:
    med = statistics.median(values)
    p99 = sorted(values)[max(0, int(len(values) * 0.99) - 1)]
    line = f"{name:<34} median {med * 1e3:8.2f} ms  p99 {p99 * 1e3:8.2f} ms  (n={len(values)})"
    if baseline:
        base = statistics.median(baseline)
        line += f"  baseline median {base * 1e3:6.2f} ms  ratio {med / base:5.2f}x"
    if budget_s:
        line += f"  budget {budget_s:g} s  used {max(values) / budget_s:6.1%} at worst"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a few seconds: 20 pushes per scenario, 3 timeouts")
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the refusals measured here are logged by design
    runs = 20 if args.quick else args.runs
    body, content_type = good_push()
    print(f"good push: {len(body) / 1024:.0f} kB multipart, {STALLED} stalled clients, {runs} pushes per scenario")
    baseline = scenario("baseline", runs, body, content_type)
    summary("good push, no other client", baseline, budget_s=BUDGET_S)
    headers = scenario("headers", runs, body, content_type,
                       b"POST /anpr/L1-front HTTP/1.1\r\nContent-Type: application/xml\r\nContent-Le", STALLED)
    summary(f"good push, {STALLED} stalled headers", headers, baseline, BUDGET_S)
    bodies = scenario("bodies", runs, body, content_type,
                      b"POST /anpr HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"pl", 4)
    summary(f"good push, {STALLED} stalled bodies", bodies, baseline, BUDGET_S)
    timeout_s = 1.0
    summary(f"stalled upload -> 408, deadline {timeout_s:g} s", time_to_408(timeout_s, 3 if args.quick else 10))


if __name__ == "__main__":
    main()
