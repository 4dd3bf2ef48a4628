"""`edge-agent run` as a technician starts it: a real child process, a real site file."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_file(tmp_path: Path, console_port: int, broker_port: int, scale_url: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f"""
[site]
id = "xk-run"
region = "xk-rs"
data_dir = "{tmp_path / 'data'}"
[[lanes]]
id = "L1"
[lanes.scale]
url = "{scale_url}"
[[lanes.cameras]]
id = "L1-front"
kind = "anpr"
[lanes.gate]
pin_factory = "mock"
[rules]
indicator_files = ["{REPO / 'firmware_config' / 'indicators' / 'demo.json'}"]
[sync]
enabled = true
broker_port = {broker_port}
[console]
enabled = true
port = {console_port}
""")
    return path


def test_run_serves_until_sigterm_then_stops_gates_first_and_exits_cleanly(tmp_path):
    from edge_agent.central.mosquitto import PrivateBroker
    from simulators.scale import ScaleSimulator

    broker = PrivateBroker(tmp_path / "broker").start()
    scale = ScaleSimulator("toledo", tcp_port=0, frame_interval_s=0.1)
    console_port = free_port()
    config = site_file(tmp_path, console_port, broker.port, scale.start())
    child = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                if health["online"]:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert health is not None and health["status"] == "ok" and health["online"], health
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        scale.stop()
        broker.stop()
    assert child.returncode == 0, err
    lines = err.splitlines()
    signal_at = next(i for i, line in enumerate(lines) if "agent_signal signal=SIGTERM" in line)
    stopped_at = next(i for i, line in enumerate(lines) if "agent_stopped" in line)
    assert signal_at < stopped_at
    assert not any("Traceback" in line for line in lines), err


def test_run_refuses_a_bad_site_file_with_the_key_and_exit_2(tmp_path):
    bad = tmp_path / "site.toml"
    bad.write_text('[site]\nid = "x"\nregion = "y"\n[[lanes]]\nid = "L1"\n[lanes.gate]\npin_factory = "mock"\n'
                   'barrier_open_pin = "GPIO22"\n')  # the red light's pin as well
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(bad)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "lanes[L1].gate" in result.stderr and "GPIO22" in result.stderr
