"""The short form of a device's health, shared by /metrics and the RAU's health event."""

from __future__ import annotations

from edge_agent.health import device_summary, frame_rate


def test_each_device_kind_gives_its_rate_under_its_own_name():
    assert frame_rate({"frames_per_s": 9.5}) == 9.5  # a scale reader
    assert frame_rate({"fps": 10}) == 10.0  # a CCTV camera
    assert frame_rate({"running": True, "accepted": 3}) is None  # the ANPR listener has no rate
    assert frame_rate({"fps": True}) is None, "a flag is not a rate"


def test_the_summary_keeps_up_rate_age_and_errors_and_nothing_else():
    scale = {"protocol": "toledo", "url": "socket://x", "connected": True, "frames_per_s": 9.5, "frames": 1200,
             "last_kg": 24100.0, "last_frame_age_s": 0.1, "rejected": 2, "link_errors": 1}
    assert device_summary(scale) == {"up": True, "frames_per_s": 9.5, "last_frame_age_s": 0.1, "errors": 3}
    assert device_summary({"running": False, "accepted": 0, "rejected": 4, "unauthorized": 1,
                           "last_reject": "bad XML"}) == {"up": False, "errors": 5}
    assert device_summary({"camera": "L1-cctv", "connected": False, "fps": 0.0, "last_frame_age_s": None,
                           "ring_encode_failures": 0}) == {"up": False, "frames_per_s": 0.0, "errors": 0}


def test_cctv_cameras_are_in_the_health_event_and_the_figures(tmp_path):
    """Every device reaches the RAU's health view and /metrics: CCTV cameras were missing."""
    import urllib.request

    from gpiozero.pins.mock import MockFactory
    from testkit.waiting import wait_for

    from edge_agent.agent import Agent
    from edge_agent.config import (
        AgentConfig,
        CameraConfig,
        GateConfig,
        LaneConfig,
        MetricsConfig,
        PolicyConfig,
        SiteConfig,
    )
    from edge_agent.simulators.barrier import simulated_barrier
    from edge_agent.simulators.cctv import CctvSimulator

    sim = CctvSimulator(fps=5, width=320, height=240).start()
    config = AgentConfig(
        site=SiteConfig(id="xk-health", region="xk-rs", data_dir=tmp_path),
        lanes=[LaneConfig(id="L1", gate=GateConfig(pin_factory="mock"),
                          cameras=[CameraConfig(id="L1-scene", kind="cctv", role="scene", url=sim.url)])],
        policy=PolicyConfig(random_secret="health-test-secret-01"),
        metrics=MetricsConfig(port=0),
    )
    agent = Agent(config, pin_factory=MockFactory(), gate_equipment=simulated_barrier()).start()
    try:
        name = "CctvCamera:L1:L1-scene"
        seen = wait_for(lambda: (h := agent.site_health()["devices"].get(name)) and h.get("up") and h, 20,
                        what="the CCTV camera up in the site's health")
        assert seen["frames_per_s"] >= 0 and seen["errors"] == 0
        assert agent.site_health()["evidence_failures"] == 0
        with urllib.request.urlopen(agent.metrics.url, timeout=10) as page:
            figures = page.read().decode()
        assert f'edge_agent_device_up{{device="{name}"}} 1' in figures
        assert f'edge_agent_device_errors_total{{device="{name}"}} 0' in figures
    finally:
        agent.stop()
        sim.stop()
