"""`scale monitor` (JSON lines, --probe) and `simulate scale` as a technician runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_agent.devices.scale.cli import scale

REPO = Path(__file__).resolve().parents[3]


def test_monitor_prints_one_json_line_per_frame_with_raw_hex(simulator):
    sim = simulator("toledo", frame_interval_s=0.02)
    sim.set_weight(12340)
    sim.inject_bad_checksum()
    result = CliRunner().invoke(scale, ["monitor", "--url", sim.url, "--protocol", "toledo", "--count", "25"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 25
    readings = [r for r in rows if r["kind"] == "reading"]
    assert readings and all(r["value_kg"] == 12340.0 and r["protocol"] == "toledo" for r in readings)
    assert all(bytes.fromhex(r["raw"]).startswith(b"\x02") for r in rows)


@pytest.mark.parametrize("protocol", ["xk3190", "rlws", "sma"])
def test_probe_names_the_protocol(simulator, protocol):
    sim = simulator(protocol, frame_interval_s=0.02)
    sim.set_weight(8000)
    result = CliRunner().invoke(scale, ["monitor", "--url", sim.url, "--probe", "--count", "3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert json.loads(lines[0])["probe"]["protocol"] == protocol
    assert all(json.loads(line)["value_kg"] == 8000.0 for line in lines[1:4])


@pytest.fixture
def silent_line():
    """A serial device server's port with nothing behind it: connects, never answers."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield f"socket://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_probe_says_so_when_nothing_matches(silent_line):
    result = CliRunner().invoke(scale, ["monitor", "--url", silent_line, "--probe"])
    assert result.exit_code == 1
    assert json.loads(result.output.splitlines()[-1])["probe"] is None


def test_simulate_scale_prints_where_it_listens_and_serves_trucks():
    code = ("from edge_agent.simulators.cli import simulate; "
            "simulate(['scale', '--protocol', 'and', '--tcp', '0', '--interval-s', '0.02', '--seed', '3'])")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening socket://127.0.0.1:")
        url = first.split()[1]
        result = CliRunner().invoke(scale, ["monitor", "--url", url, "--protocol", "and", "--count", "5"])
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert len(rows) == 5 and all(r["kind"] == "reading" for r in rows)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.parametrize("transport", [{"pty": True}, {"tcp_port": 0}])
def test_zero_and_tare_an_mtsics_indicator(simulator, transport):
    sim = simulator("mt-sics", **transport)
    sim.set_weight(0)
    zeroed = CliRunner().invoke(scale, ["zero", "--url", sim.url])
    assert zeroed.exit_code == 0, zeroed.output
    assert json.loads(zeroed.output) == {"command": "Z", "done": True, "message": "zeroed", "raw": b"Z A\r\n".hex()}
    sim.set_weight(1240)
    # The indicator calls a jump of more than a division motion: one poll lets it see the load still.
    shown = CliRunner().invoke(scale, ["monitor", "--url", sim.url, "--protocol", "mt-sics", "--count", "1"])
    assert json.loads(shown.output)["stable"] is False
    tared = CliRunner().invoke(scale, ["tare", "--url", sim.url])
    assert tared.exit_code == 0, tared.output
    assert json.loads(tared.output)["message"] == "tared at 1240 kg"


def test_zero_is_refused_while_a_truck_moves_and_says_why(simulator):
    sim = simulator("mt-sics")
    sim.drive_on(24000, ramp_s=30.0)
    refused = CliRunner().invoke(scale, ["zero", "--url", sim.url])
    assert refused.exit_code == 1
    row = json.loads(refused.output)
    assert row["done"] is False and "in motion" in row["message"] and bytes.fromhex(row["raw"]) == b"Z I\r\n"


def test_zero_names_a_silent_line(silent_line):
    result = CliRunner().invoke(scale, ["zero", "--url", silent_line, "--timeout", "0.5"])
    assert result.exit_code == 1 and "no answer to Z" in result.output
