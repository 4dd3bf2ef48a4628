"""Retention in a running agent: the worker purges files on request, the core's tick
deletes the rows after them, holds stay, /metrics shows it, and the chain verifies."""

from __future__ import annotations

from datetime import timedelta

from gpiozero.pins.mock import MockFactory
from testkit import console_rig as rig
from testkit.retention_site import Site

from edge_agent.config import RetentionConfig
from edge_agent.evidence.verify import verify_evidence
from edge_agent.models import utcnow
from edge_agent.storage.worker import read_status, request_purge


def test_a_running_agent_purges_on_request_and_keeps_what_is_held(tmp_path):
    history = Site(tmp_path)
    old = utcnow() - timedelta(days=400)
    plain = history.crossing(old)
    held = history.crossing(old, hit=True)
    history.store.close()
    config = rig.site_config(tmp_path).model_copy(update={"retention": RetentionConfig(purge_interval_s=3600)})
    agent = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path).start()
    try:
        request_purge(tmp_path)
        rig.wait_for(lambda: read_status(tmp_path).get("runs") == 1, "the worker's purge")
        assert history.files_of(plain) == [] and len(history.files_of(held)) == 4
        rig.wait_for(lambda: agent.metrics_store.crossing_lane(plain) is None, "the rows purged by the core")
        assert agent.metrics_store.crossing_lane(held) == "L1"
        metrics = agent.render_metrics()
        assert "edge_agent_held_crossings 1" in metrics
        assert 'edge_agent_retention_purged_files_total{class="media",reason="period"} 2' in metrics
        assert 'edge_agent_storage_class_bytes{class="flagged"}' in metrics
        assert "edge_agent_disk_free_bytes " in metrics and "edge_agent_outbox_depth " in metrics
        assert 'edge_agent_evidence_budget_state{state="ok"} 1' in metrics
    finally:
        agent.stop()
    purges: list[str] = []
    assert verify_evidence(tmp_path / "evidence", purges=purges, unsealed_grace_s=1e12) == []
    assert len(purges) == 4
