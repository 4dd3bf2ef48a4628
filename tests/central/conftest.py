"""A private mosquitto on a free loopback port, and the real `edge-agent central serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.central.mosquitto import PrivateBroker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def broker(tmp_path: Path):
    b = PrivateBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def served_hub(broker, tmp_path: Path):
    """`edge-agent central serve` as a child process; yields (db path, process)."""
    db = tmp_path / "central.db"
    ready = tmp_path / "hub.ready"
    log = open(tmp_path / "hub.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.cli",
            "central",
            "serve",
            "--port",
            str(broker.port),
            "--db",
            str(db),
            "--ready-file",
            str(ready),
            "--office",
            "XK0101=bcp-a",
            "--client-id",
            f"rau-hub-{os.getpid()}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), (tmp_path / "hub.log").read_text()
    yield db, proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()
