"""The CLI: assess, indicators list/show/import/add-local/stats, on real files and a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from testkit import rule_builders as b

from edge_agent.local_rules import load_indicator_set
from edge_agent.local_rules.cli import assess_command, indicators
from edge_agent.store import Store

DEMO = str(b.DEMO_SET)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(f"""
[site]
id = "bcp-test"
region = "north"
timezone = "Europe/Belgrade"
data_dir = "{tmp_path / 'data'}"

[[lanes]]
id = "L1"

[policy]
random_share_pct = 0.0
random_secret = "cli-test-secret"

[rules]
indicator_files = ["{DEMO}"]
""")
    return config


def run(command, args) -> tuple[int, str]:
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def write_record(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "record.json"
    path.write_text(b.make_record(**overrides).model_dump_json())
    return path


def test_assess_prints_the_verdict_as_json(tmp_path):
    record = write_record(tmp_path, consignee={"name": "DRINI TRADE SHPK"})
    code, out = run(assess_command, ["--prearrival", record, "--weight", "30000", "--indicators", DEMO,
                                     "--now", "2026-05-04T09:30:00+00:00"])
    assert code == 0
    verdict = json.loads(out)
    assert verdict["reference"] == "RS-2026-000123"
    assert verdict["channel"] == "red"
    assert [h["indicator_id"] for h in verdict["hits"]] == ["C-WEIGHT-10", "R-CONSIGNEE-WATCH"]
    assert verdict["deviation_kg"] == 6000.0 and verdict["deviation_pct"] == 25.0


def test_assess_without_a_record_and_with_a_site(tmp_path, site):
    code, out = run(assess_command, ["--plate", "PR 999 ZZ", "--weight", "14000", "--config", site])
    assert code == 0
    verdict = json.loads(out)
    assert verdict["channel"] == "yellow" and [h["indicator_id"] for h in verdict["hits"]] == ["C-NO-RECORD"]
    code, out = run(assess_command, ["--config", site])
    assert code != 0 and "--prearrival" in out


def test_list_and_show(site):
    code, out = run(indicators, ["list", "--config", site])
    assert code == 0 and "C-WEIGHT-10" in out and "L-TOBACCO-24" in out and "demo-2026.1" in out
    code, out = run(indicators, ["show", "R-CONSIGNEE-WATCH", "--indicators", DEMO])
    shown = json.loads(out)
    assert shown["when"] == {"field": "consignee.name", "op": "fuzzy", "threshold": 90.0, "list": "watch_consignees"}
    code, out = run(indicators, ["show", "NOPE", "--indicators", DEMO])
    assert code != 0 and "NOPE" in out


def test_import_validates_then_installs_and_refuses_bad_sets(tmp_path, site):
    good = tmp_path / "regional.json"
    good.write_text(json.dumps({"version": "north-3", "indicators": [
        {"id": "R-FRUIT", "level": "regional", "when": {"field": "items.hs_code", "op": "prefix", "value": "0805"},
         "action": {"channel": "yellow"}}]}))
    code, out = run(indicators, ["import", good, "--config", site])
    assert code == 0, out
    installed = tmp_path / "data" / "indicators" / "regional.json"
    assert load_indicator_set(installed).version == "north-3"

    bad = tmp_path / "regional2.json"
    bad.write_text(json.dumps({"version": "north-4", "indicators": [
        {"id": "R-BAD", "level": "regional", "when": {"field": "items.hs", "op": "prefix", "value": "0805"},
         "action": {"channel": "yellow"}}]}))
    replacing = tmp_path / "x" / "regional.json"
    replacing.parent.mkdir()
    replacing.write_bytes(bad.read_bytes())
    code, out = run(indicators, ["import", replacing, "--config", site])
    assert code != 0 and "R-BAD: unknown field 'items.hs'" in out
    assert load_indicator_set(installed).version == "north-3"  # the previous set stays

    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({"version": "c", "indicators": [
        {"id": "C-WEIGHT-10", "level": "central", "when": {"field": "procedure", "op": "exists"},
         "action": {"channel": "red"}}]}))
    code, out = run(indicators, ["import", clash, "--config", site])
    assert code != 0 and "C-WEIGHT-10: version 1 defined in two sets" in out
    assert not (tmp_path / "data" / "indicators" / "clash.json").exists()

    code, out = run(indicators, ["list", "--config", site, "--json"])
    assert "R-FRUIT" in {i["id"] for i in json.loads(out)["indicators"]}


def test_add_local_writes_validates_and_versions(tmp_path, site):
    args = ["add-local", "--config", site, "--id", "L-ORANGES", "--title", "Oranges from AL",
            "--when", '{"all":[{"field":"items.hs_code","op":"prefix","value":"0805"},'
                      '{"field":"items.origin","op":"eq","value":"AL"}]}',
            "--channel", "yellow", "--instructions", "Check phytosanitary certificate.", "--author", "analyst1"]
    code, out = run(indicators, args)
    assert code == 0, out
    local = tmp_path / "data" / "indicators" / "local.json"
    rules = load_indicator_set(local)
    ind = rules.get("L-ORANGES")
    assert (ind.level, ind.version, ind.author, ind.owner) == ("local", 1, "analyst1", "bcp-test")
    code, out = run(indicators, args)
    assert load_indicator_set(local).get("L-ORANGES").version == 2
    # No agent runs here: it takes the change, and queues it for the RAU, when it starts
    # (tests/core/test_profiles.py and tests/test_run.py show both).
    assert "no agent runs on this data directory" in out

    code, out = run(indicators, ["add-local", "--config", site, "--id", "L-BAD", "--channel", "purple",
                                 "--when", '{"field":"items.hs_code","op":"prefix","value":"0805"}'])
    assert code != 0 and "L-BAD: unknown channel" in out
    assert load_indicator_set(local).get("L-BAD") is None
    # the site now runs with the local indicator
    record = write_record(tmp_path, items=[{"hs_code": "0805100000", "origin": "AL"}])
    code, out = run(assess_command, ["--prearrival", record, "--config", site])
    assert [h["indicator_id"] for h in json.loads(out)["hits"]] == ["L-ORANGES"]


def test_stats_reads_the_store_read_only(tmp_path, site):
    code, out = run(indicators, ["stats", "--config", site, "--json"])
    assert code == 0 and json.loads(out)["indicators"] == []  # no database yet

    db_path = tmp_path / "data" / "agent.db"
    Store.open(db_path).close()  # the agent's schema, as a site that has not decided anything yet has it
    db = sqlite_utils.Database(db_path)
    db["hits"].insert_all([
        {"assessment_id": "a1", "crossing_id": "c1", "indicator_id": "C-WEIGHT-10", "level": "central",
         "channel": "red", "at": "2026-05-04T09:00:00Z"},
        {"assessment_id": "a2", "crossing_id": "c2", "indicator_id": "C-WEIGHT-10", "level": "central",
         "channel": "red", "at": "2026-05-04T10:00:00Z"},
    ])
    db.close()
    code, out = run(indicators, ["stats", "--config", site, "--json"])
    stats = json.loads(out)["indicators"]  # no control act yet
    assert stats == [{"indicator_id": "C-WEIGHT-10", "level": "central", "hits": 2, "controls": 0,
                      "positives": 0, "hit_rate": None}]  # no control recorded: unknown, not 0 %

    db = sqlite_utils.Database(db_path)
    db["control_acts"].insert({"id": "k1", "crossing_id": "c2", "lane": "L1", "result": "positive", "user": "u",
                               "at": "2026-05-04T11:00:00Z", "body": "{}"})
    db["assessments"].insert_all([{"id": "a1", "channel": "red", "random_selected": 0},
                                  {"id": "a2", "channel": "red", "random_selected": 0}])
    db.close()
    code, out = run(indicators, ["stats", "--config", site])
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("C-WEIGHT-10"))
    assert line.split()[2:] == ["2", "1", "1", "100.0%"]  # one positive per one control
    assert "red" in out and "100.0%" in out
