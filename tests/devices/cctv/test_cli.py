"""The technician's CCTV commands and the simulator's command line."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
from click.testing import CliRunner

from edge_agent.devices.cctv.cli import cctv

REPO = Path(__file__).resolve().parents[3]


def test_snapshot_writes_a_jpeg_of_the_stream(sim, tmp_path):
    out = tmp_path / "snap.jpg"
    result = CliRunner().invoke(cctv, ["snapshot", sim.url, str(out)])
    assert result.exit_code == 0, result.output
    assert "320x240" in result.output
    assert cv2.imread(str(out)).shape == (240, 320, 3)


def test_snapshot_of_a_dead_camera_exits_one(closed_port_url, tmp_path):
    out = tmp_path / "snap.jpg"
    result = CliRunner().invoke(cctv, ["snapshot", closed_port_url, str(out), "--timeout-s", "2"])
    assert result.exit_code == 1
    assert "cannot open" in result.output
    assert not out.exists()


def test_watch_prints_health_lines(sim):
    result = CliRunner().invoke(cctv, ["watch", sim.url, "--seconds", "2.5"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) >= 2  # one a second, however busy the machine
    assert lines[-1]["camera"] == "probe" and lines[-1]["frames"] > 0


def test_simulator_command_serves_a_stream(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.simulators.cctv", "--port", "0", "--size", "320x240", "--fps", "5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("CCTV stream at http://127.0.0.1:"), line
        url = line.split()[3]
        with urllib.request.urlopen(url.replace("/stream.mjpg", "/snapshot.jpg"), timeout=10) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.read(2) == b"\xff\xd8"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
            assert response.readline().startswith(b"--")
    finally:
        proc.terminate()
        proc.wait(10)
