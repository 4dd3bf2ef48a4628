"""Fixtures for every test folder: a private mosquitto broker and reaped child processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit.processes import Proc

from edge_agent.central.mosquitto import PrivateBroker


@pytest.fixture()
def broker(tmp_path: Path):
    b = PrivateBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def processes():
    started: list[Proc] = []

    def start(args: list[str], log_path: Path, **kwargs) -> Proc:
        p = Proc(args, log_path, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.terminate()
