"""CCTV fixtures: a real MJPEG HTTP simulator, real video files, cameras that always stop."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from testkit.waiting import wait_for

from edge_agent.config import CameraConfig
from edge_agent.devices.cctv.capture import CctvCamera
from edge_agent.simulators.cctv import CctvSimulator, lane_background, render_scene


@pytest.fixture
def wait_until():
    return wait_for


@pytest.fixture
def sim():
    simulator = CctvSimulator(fps=10, width=320, height=240, name="TEST").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def cameras():
    """Make cameras with `make(url, **config)`; every one is stopped after the test."""
    made: list[CctvCamera] = []

    def make(url: str, lane_id: str = "L1", camera_id: str | None = None, **fields) -> CctvCamera:
        fields.setdefault("ring_width_px", 160)
        fields.setdefault("stream_timeout_s", 3.0)
        fields.setdefault("reconnect_max_s", 0.5)
        config = CameraConfig(id=camera_id or f"cam{len(made) + 1}", kind="cctv", role="scene", url=url, **fields)
        camera = CctvCamera(config, lane_id)
        made.append(camera)
        return camera

    yield make
    for camera in made:
        camera.stop()


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    """A 2-second MJPG AVI of the lane scene (20 frames at 10 frames/s) made by VideoWriter."""
    import cv2

    path = tmp_path / "lane.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    assert writer.isOpened()
    background = lane_background(320, 240)
    for n in range(20):
        writer.write(render_scene(background, n / 10.0, n, "FILE"))
    writer.release()
    return path


@pytest.fixture
def closed_port_url() -> str:
    """An HTTP URL where nothing listens (a port just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/stream.mjpg"


class RtspCamera:
    """GStreamer's RTSP server in a child process (rtsp_server.py), killable and restartable."""

    SCRIPT = Path(__file__).with_name("rtsp_server.py")

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> RtspCamera:
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(self.SCRIPT), str(self.port), "320x240", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        self.port = int(line)  # a restart reuses the same port, as a rebooted camera does
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/lane"


@pytest.fixture
def rtsp():
    camera = RtspCamera().start()
    yield camera
    camera.stop()
