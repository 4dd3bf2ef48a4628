"""`edge-agent run` as a technician starts it: a real child process, a real site file."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from testkit.processes import reaped
from testkit.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_file(tmp_path: Path, console_port: int, broker_port: int, scale_url: str, metrics_port: int) -> Path:
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
travel_s = 0.5
[policy]
random_secret = "run-test-secret-0123456789"
[rules]
indicator_files = ["{REPO / 'firmware_config' / 'indicators' / 'demo.json'}"]
[sync]
enabled = true
broker_port = {broker_port}
health_interval_s = 1.0
[console]
enabled = true
port = {console_port}
[metrics]
port = {metrics_port}
""")
    return path


def online(console_port: int) -> dict | None:
    """The console's /healthz once it says the link is online; None before."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/healthz", timeout=2) as r:
            health = json.loads(r.read())
    except OSError:
        return None
    return health if health["online"] else None


@contextlib.contextmanager
def watching_health(port: int, site: str):
    """Health events the site publishes, collected as they arrive."""
    import paho.mqtt.client as mqtt

    from edge_agent.sync import topics

    received: list[dict] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"health-watch-{port}")
    client.on_message = lambda c, u, m: received.append(json.loads(m.payload))
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topics.up(site, "health"), 0)
    client.loop_start()
    try:
        assert subscribed.wait(15)
        yield received
    finally:
        client.loop_stop()
        client.disconnect()


def test_run_serves_until_sigterm_then_stops_gates_first_and_exits_cleanly(tmp_path):
    from edge_agent.central.mosquitto import PrivateBroker
    from edge_agent.simulators.scale import ScaleSimulator

    broker = PrivateBroker(tmp_path / "broker").start()
    scale = ScaleSimulator("toledo", tcp_port=0, frame_interval_s=0.1)
    console_port, metrics_port = free_port(), free_port()
    config = site_file(tmp_path, console_port, broker.port, scale.start(), metrics_port)
    try:
        with watching_health(broker.port, "xk-run") as health_events:
            child = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with reaped(child):
                health = wait_for(lambda: online(console_port) or child.poll() is not None, 60,
                                  what="the console's /healthz online")
                assert health is not True and health["status"] == "ok", "the agent exited"
                # The RAU sees the lane's devices in the site's health event, not only the link's:
                # here the scale's frames, and the gate's fault, since on mock pins nothing
                # answers the barrier's relays and its closed limit never reports.
                upstream = wait_for(lambda: next((h for h in health_events if h.get("lanes", {}).get("devices", {})
                                                  .get("ScaleReader:L1", {}).get("frames_per_s", 0) > 0
                                                  and h["lanes"]["gates"]["L1"]["barrier"] == "fault"), None),
                                    what="a health event with the scale's frame rate and the gate's fault")
                assert upstream["lanes"]["devices"]["ScaleReader:L1"]["up"] is True
                assert upstream["lanes"]["gates"]["L1"]["lights"] == "red"
                assert "did not report closed" in upstream["lanes"]["gates"]["L1"]["fault"]
                assert upstream["lanes"]["phases"] == {"L1": "idle"}
                # The figures are the agent's, on their own loopback port, not the console's.
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                    figures = r.read().decode()
                assert 'edge_agent_device_up{device="ScaleReader:L1"} 1' in figures
                assert 'edge_agent_gate_fault{lane="L1"} 1' in figures
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{console_port}/metrics", timeout=5)
                    raise AssertionError("the console serves /metrics")
                except urllib.error.HTTPError as err:
                    assert err.code == 404
                child.send_signal(signal.SIGTERM)
                out, err = child.communicate(timeout=60)
    finally:
        scale.stop()
        broker.stop()
    assert child.returncode == 0, err
    assert "gate_mock_pins lane=L1" in err  # a dry run says that it drives nothing
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


def test_run_never_falls_back_to_mock_pins_and_says_how_to_ask_for_them(tmp_path):
    """A site file that does not name a pin factory gets the board's (lgpio), never the
    mock one: on a machine without GPIO the agent refuses to start and says why."""
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "x"\nregion = "y"\ndata_dir = "{tmp_path / "data"}"\n'
                    '[policy]\nrandom_secret = "run-test-secret-0123456789"\n[[lanes]]\nid = "L1"\n')
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(site)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "gpio pin factory 'lgpio' cannot start" in result.stderr
    assert 'pin_factory = "mock"' in result.stderr
    assert "gate_mock_pins" not in result.stderr


@pytest.mark.parametrize(("secret", "why"), [
    (None, "missing"), ('"site-secret-change-me"', "the example's published value"),
    ('"short-secret"', "shorter than 16 characters"),
])
def test_run_and_check_config_refuse_a_missing_or_published_random_secret(tmp_path, secret, why):
    """Without a secret of its own a site's random selection is predictable from the code."""
    policy = f"[policy]\nrandom_secret = {secret}\n" if secret else ""
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "x"\nregion = "y"\ndata_dir = "{tmp_path / "data"}"\n{policy}'
                    '[[lanes]]\nid = "L1"\n[lanes.gate]\npin_factory = "mock"\n')
    for command in (["check-config", str(site)], ["run", "--config", str(site)]):
        result = subprocess.run([sys.executable, "-m", "edge_agent.cli", *command], cwd=REPO, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert f"policy.random_secret: {why}" in result.stderr and "openssl rand" in result.stderr
    assert not (tmp_path / "data" / "agent.db").exists()  # refused before anything started


def test_a_local_indicator_added_while_the_agent_runs_is_taken_and_queued_for_the_rau(tmp_path):
    """`indicators add-local` writes the file and signals the running agent (SIGHUP), which
    reloads its rules and queues the indicator upward; the command says which happened."""
    from edge_agent.store import StoreView

    data = tmp_path / "data"
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "xk-reload"\nregion = "xk-rs"\ndata_dir = "{data}"\n'
                    '[policy]\nrandom_secret = "run-test-secret-0123456789"\n[metrics]\nport = 0\n'
                    '[[lanes]]\nid = "L1"\n[lanes.gate]\npin_factory = "mock"\n')
    child = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(site)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(child):
        wait_for(lambda: (data / "agent.pid").exists() or child.poll() is not None, 60, what="the agent's pid file")
        assert child.poll() is None, child.communicate()[1]
        added = subprocess.run([sys.executable, "-m", "edge_agent.cli", "indicators", "add-local", "--config",
                                str(site), "--id", "L-ORANGES", "--channel", "yellow", "--author", "lara",
                                "--when", '{"field":"items.hs_code","op":"prefix","value":"0805"}'],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        assert f"the running agent (pid {child.pid}) takes the change now" in added.stdout
        view = StoreView(data / "agent.db")
        try:
            queued = wait_for(lambda: view.outbox_payloads("local_indicator"), 30, what="the indicator queued")
        finally:
            view.close()
        assert [q["indicator"]["id"] for q in queued] == ["L-ORANGES"]
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    assert "rules_reloaded" in err and not (data / "agent.pid").exists()
