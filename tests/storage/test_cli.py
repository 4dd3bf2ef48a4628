"""`edge-agent storage status|hold|release|purge` as documented, on a site's data directory."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from testkit.retention_site import Site

from edge_agent.cli import main
from edge_agent.evidence.verify import verify_evidence
from edge_agent.models import utcnow
from edge_agent.web.audit import AuditLog


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    s.config = tmp_path / "site.toml"
    s.config.write_text(f'[site]\nid = "BCP1"\nregion = "WB"\ndata_dir = "{tmp_path}"\n\n[[lanes]]\nid = "L1"\n')
    yield s
    s.store.close()


def run(*args):
    return CliRunner().invoke(main, ["storage", *map(str, args)])


def test_hold_and_release_are_stored_and_audit_logged(site, tmp_path):
    old = utcnow() - timedelta(days=400)
    plain = site.crossing(old)
    hit = site.crossing(old, hit=True)
    result = run("hold", plain, "--reason", "case 2025/17", "--by", "head", "--config", site.config)
    assert result.exit_code == 0, result.output
    assert f"crossing {plain} on hold" in result.output
    result = run("release", hit, "--reason", "no case", "--by", "head", "--config", site.config)
    assert result.exit_code == 0, result.output
    assert site.store.hold_of(hit)["state"] == "released"
    assert run("release", hit, "--reason", "again", "--by", "head", "--config", site.config).exit_code == 1
    assert run("hold", "NOPE", "--reason", "x", "--by", "head", "--config", site.config).exit_code == 1
    entries = AuditLog(tmp_path / "console.db").entries()
    assert [(e.action, e.user, e.reason, e.details["crossing"]) for e in reversed(entries)] == [
        ("storage_hold", "head", "case 2025/17", plain), ("storage_release", "head", "no case", hit)]

    status = run("status", "--config", site.config, "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert report["held_crossings"] == 1
    assert report["due_now"] == {}  # one held by hand; the released one's periods run from its release
    assert report["bytes_by_class"]["media"] > 0 and report["bytes_by_class"]["records"] > 0
    text = run("status", "--config", site.config)
    assert "held crossings 1" in text.output and plain in text.output


def test_purge_dry_run_lists_and_deletes_nothing_then_purge_deletes(site):
    old = utcnow() - timedelta(days=400)
    plain = site.crossing(old)
    held = site.crossing(old, control=True)
    result = run("purge", "--dry-run", "--config", site.config)
    assert result.exit_code == 0, result.output
    assert f"crossings/{plain}/snapshot/arrival_cam0.jpg  class=media reason=period" in result.output
    assert f"records of crossing {plain} (lane L1)  class=records reason=period" in result.output
    assert held not in result.output
    assert "4 file(s) would go" in result.output and "records of 1 crossing(s) would go" in result.output
    assert len(site.files_of(plain)) == 4 and site.kept(plain)

    result = run("purge", "--config", site.config)
    assert result.exit_code == 0, result.output
    assert "4 file(s) went" in result.output
    assert site.files_of(plain) == [] and not site.kept(plain)
    assert len(site.files_of(held)) == 4 and site.kept(held)
    purges: list[str] = []
    assert verify_evidence(site.evidence.root, purges=purges, unsealed_grace_s=1e12) == []
    assert len(purges) == 4


def test_evidence_verify_counts_purges_apart_from_problems(site):
    site.crossing(utcnow() - timedelta(days=400))
    assert run("purge", "--config", site.config).exit_code == 0
    result = CliRunner().invoke(main, ["evidence", "verify", "--config", str(site.config), "--local-only",
                                       "--show-purges"])
    assert result.exit_code == 0, result.output
    assert "4 purged file(s) (retention, each with its tombstone)" in result.output
    assert result.output.count("purged: crossings/") == 4
